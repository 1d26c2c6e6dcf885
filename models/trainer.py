"""One training loop for every model: phases of (batches, loss), early stopping, checkpoints, resume.

- Device: CUDA when present, else CPU (``device="cpu"``/``"cuda"`` forces one). On CUDA, TF32 matrix products are
  allowed (fp32 storage, tensor-core products).
- Precision (``precision``): ``"fp32"`` by default everywhere; ``"bf16"`` trains under bf16 autocast, for the models
  whose ``precisions`` include it (each tested to reach its fp32 validation metric; the others refuse it).
- Reproducible: all sampling draws from one seeded ``torch.Generator`` on the training device, whose state is saved
  with the checkpoint, so a resumed run continues the same sequence. The batches of an epoch are drawn on the device
  at once (no per-batch host-to-device copy); a CPU run draws exactly the numbers it drew before.
- CUDA graphs (``cuda_graphs``, on CUDA only): the phases a model lists in ``graph_phases`` replay a captured graph
  of their whole step (:mod:`models.cuda_graphs`) instead of launching its kernels one by one.
- Each epoch runs the phases in order (one for most models; KGAT alternates CF and KG phases), the
  model's ``on_epoch_end`` hook (counted as training time), then ``validate(model)``; the best epoch by
  ``metric`` is kept. Training stops after ``patience`` epochs without improvement, or after ``epochs``.
- Several processes (``torchrun``, :mod:`models.distributed`): the model wrapped in ``DistributedDataParallel``,
  each rank training on its share of every epoch's batches, losses averaged across ranks, rank 0 validating (all
  ranks stop together) and alone writing files; the effective batch is ``ranks x batch_size``.
- Files in ``out_dir``: ``model.pt`` (the best ``state_dict``), ``last.pt`` (model, optimiser, epoch,
  generator state: the resume point; plain tensors and numbers, loaded with ``weights_only=True``) and
  ``metrics.jsonl`` (one JSON object per epoch, appended).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from models import distributed
from models.cuda_graphs import GraphedStep

log = logging.getLogger("kgrec.train")


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-3
    patience: int = 5
    seed: int = 2026
    device: str = "auto"
    eval_batch_users: int = 256
    negatives: int = 1  # sampled negatives per training positive (models with multi_negative take > 1)
    precision: str = "fp32"  # or "bf16" (autocast), for the models whose ``precisions`` include it
    cuda_graphs: bool = True  # replay captured CUDA graphs of the steps of the model's ``graph_phases`` (CUDA only)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1 or self.negatives < 1:
            raise ValueError(f"bad training settings {asdict(self)}: epochs, batch_size, patience, negatives >= 1 "
                             "and lr > 0")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class Phase:
    """One pass over some batches per epoch. ``batches(generator)`` yields objects with ``.to(device)``."""

    name: str
    batches: Callable[[torch.Generator], Iterable[Any]]
    loss: Callable[[Any], torch.Tensor]
    size: int  # batches per epoch (for the progress bar)
    graphable: bool = False  # the step may be captured as a CUDA graph (fixed shapes, no host synchronisation)


@dataclass
class TrainResult:
    metric: str
    best_epoch: int
    best_score: float
    epochs: int
    train_s_per_epoch: float
    history: list[dict[str, Any]] = field(default_factory=list)
    graph_replays: dict[str, int] = field(default_factory=dict)  # per phase, steps replayed from a CUDA graph


def resolve_device(name: str = "auto") -> torch.device:
    """The device called ``name`` (``"auto"``: CUDA when present); on CUDA, TF32 matrix products are allowed."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA device is available")
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def training_device(config: TrainConfig) -> torch.device:
    """The device this process trains on (under ``torchrun``, its rank's GPU)."""
    return resolve_device(distributed.device(distributed.context(), config.device))


def check_precision(model: torch.nn.Module, precision: str) -> None:
    """ValueError unless ``model`` may train in ``precision`` (its ``precisions``; fp32 always)."""
    allowed = getattr(model, "precisions", ("fp32",))
    if precision not in allowed:
        raise ValueError(f"{type(model).__name__} does not train in {precision} (it trains in "
                         f"{', '.join(allowed)}): bf16 is allowed only for the models a test shows to reach their fp32 "
                         "validation metric in it; set train.precision = \"fp32\"")


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        phases: list[Phase],
        validate: Callable[[torch.nn.Module], dict[str, float]],
        *,
        metric: str,
        config: TrainConfig,
        out_dir: Path | None = None,
        progress: bool = True,
    ) -> None:
        self.model, self.phases, self.validate, self.metric = model, phases, validate, metric
        self.config, self.out_dir, self.progress = config, out_dir, progress
        self.ctx = distributed.context()
        self.device = training_device(config)
        check_precision(model, config.precision)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.trainable = bool(getattr(model, "trainable", True))
        self.model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        self.graphs = (config.cuda_graphs and self.device.type == "cuda" and not self.ctx.distributed
                       and self.trainable and bool(params))
        # fused Adam: one kernel over all parameters (on a 2-core CPU 1 ms a step for KGAT's 4.5M parameters on
        # movielens-small, against 14 ms for the default per-parameter loop, which took a third of its epoch);
        # capturable: its step counters live on the device, so a CUDA graph can hold the step
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True, capturable=self.graphs) \
            if self.trainable and params else None
        self._graphed: dict[str, GraphedStep] = {}
        self.objective: torch.nn.Module | None = None
        if self.ctx.distributed and self.optimizer is not None:  # count-based models see every batch on every rank
            from torch.nn.parallel import DistributedDataParallel

            self.objective = DistributedDataParallel(
                distributed.Objective(model), device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)  # a KG phase leaves the CF layers without gradient
        self._best: dict[str, torch.Tensor] | None = None

    def fit(self, resume: bool = False) -> TrainResult:
        result = TrainResult(self.metric, -1, -math.inf, 0, 0.0)
        start, stale = 0, 0
        if resume and self.out_dir and (self.out_dir / "last.pt").exists():
            start, stale, result.best_epoch, result.best_score = self._restore()
            self._keep_history_before(start)
            log.info("resuming at epoch %d (best %s %.4f at epoch %d)", start, self.metric, result.best_score,
                     result.best_epoch)
        train_seconds: list[float] = []
        for epoch in range(start, self.config.epochs):
            losses, seconds = self._train_epoch(epoch)
            train_seconds.append(seconds)
            began = time.perf_counter()
            scores = distributed.from_main(self.validate(self.model) if self.ctx.main else None, self.ctx)
            record = {"epoch": epoch, "loss": losses, "train_s": round(seconds, 3),
                      "valid": scores, "eval_s": round(time.perf_counter() - began, 3)}
            result.history.append(record)
            improved = scores[self.metric] > result.best_score
            if improved:
                result.best_epoch, result.best_score, stale = epoch, scores[self.metric], 0
                self._best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self._save("model.pt", self._best)
            else:
                stale += 1
            if self.ctx.main:
                log.info("epoch %d: loss %s, valid %s %.4f%s (%.1f s)", epoch, _fmt(losses), self.metric,
                         scores[self.metric], " *" if improved else "", seconds)
            self._append(record)
            self._save("last.pt", self._state(epoch, stale, result))
            result.epochs = epoch + 1
            if not self.trainable or stale >= self.config.patience:
                break
        result.train_s_per_epoch = sum(train_seconds) / max(len(train_seconds), 1)
        result.graph_replays = {name: graphed.replays for name, graphed in self._graphed.items()}
        self._graphed.clear()  # the graphs and their memory go now, not at some later garbage collection
        if self._best is None and self.out_dir and (self.out_dir / "model.pt").exists():  # best was before a resume
            self._best = torch.load(self.out_dir / "model.pt", map_location=self.device, weights_only=True)
        if self._best is not None:
            self.model.load_state_dict(self._best)
        return result

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], float]:
        self.model.train()
        if hasattr(self.model, "on_epoch_start"):
            self.model.on_epoch_start(self.generator)
        began = time.perf_counter()
        losses = {}
        for phase in self.phases:
            total, count = torch.zeros((), device=self.device), 0
            batches = phase.batches(self.generator)
            if self.objective is not None:  # this rank's share of the epoch (every rank draws the same epoch)
                batches = distributed.shard(list(batches), self.ctx)
            bar = tqdm(batches, total=len(batches) if isinstance(batches, list) else phase.size,
                       desc=f"epoch {epoch} {phase.name}", leave=False,
                       disable=not self.progress or not self.ctx.main or not os.isatty(2))
            graphed = self._graph_of(phase)
            for batch in bar:
                on_device = batch.to(self.device)
                loss = graphed.step(on_device) if graphed is not None else None
                if loss is None:
                    loss = self._step(phase, on_device)
                total += loss.float()
                count += 1
            losses[phase.name] = distributed.mean({"loss": float(total) / max(count, 1)}, self.ctx)["loss"]
            if not math.isfinite(losses[phase.name]):
                raise FloatingPointError(f"epoch {epoch}: {phase.name} loss is {losses[phase.name]}")
        if hasattr(self.model, "on_epoch_end"):
            with torch.no_grad():
                self.model.on_epoch_end()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return losses, time.perf_counter() - began

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16",
                              cache_enabled=not self.graphs)  # a graph must not keep autocast's cast copies

    def _step(self, phase: Phase, batch: Any) -> torch.Tensor:
        """One eager training step; the batch's loss (detached)."""
        with self._autocast():
            loss = phase.loss(batch) if self.objective is None else self.objective(phase.loss, batch)
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def _graph_of(self, phase: Phase) -> GraphedStep | None:
        """The phase's CUDA-graphed step (made on first use), or None when the phase trains eagerly."""
        if not (self.graphs and phase.graphable):
            return None
        if phase.name not in self._graphed:
            self._graphed[phase.name] = GraphedStep(phase.name, phase.loss, self.optimizer, self._autocast)
        return self._graphed[phase.name]

    def _state(self, epoch: int, stale: int, result: TrainResult) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else {},
                "generator": self.generator.get_state(), "epoch": epoch, "stale": stale,
                "best_epoch": result.best_epoch, "best_score": result.best_score}

    def _restore(self) -> tuple[int, int, int, float]:
        state = torch.load(self.out_dir / "last.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None and state["optimizer"]:
            self.optimizer.load_state_dict(state["optimizer"])
        try:
            self.generator.set_state(state["generator"])
        except RuntimeError:  # the checkpoint was written on another kind of device: a new seeded stream
            log.warning("resuming on %s from a checkpoint written on another device: the sampling stream restarts "
                        "from the seed", self.device)
            self.generator.manual_seed(self.config.seed + state["epoch"] + 1)
        return state["epoch"] + 1, state["stale"], state["best_epoch"], state["best_score"]

    def _save(self, name: str, state: dict[str, Any]) -> None:
        if self.out_dir is None or not self.ctx.main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / f".{name}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out_dir / name)

    def _keep_history_before(self, epoch: int) -> None:
        """Drop metric lines of epochs the resume point does not include (written after the last checkpoint)."""
        path = self.out_dir / "metrics.jsonl"
        if path.exists() and self.ctx.main:
            lines = path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] < epoch]
            path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def _append(self, record: dict[str, Any]) -> None:
        if self.out_dir is not None and self.ctx.main:
            with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def _fmt(losses: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
