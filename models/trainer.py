"""One training loop for every model: phases of (batches, loss), early stopping, checkpoints, resume.

- Device: CUDA when present, else CPU (``device="cpu"``/``"cuda"`` forces one); bf16 autocast on CUDA.
- Reproducible: all sampling draws from one seeded ``torch.Generator`` (CPU), whose state is saved with
  the checkpoint, so a resumed run continues the same sequence.
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

log = logging.getLogger("kgrec.train")


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

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1 or self.negatives < 1:
            raise ValueError(f"bad training settings {asdict(self)}: epochs, batch_size, patience, negatives >= 1 "
                             "and lr > 0")


@dataclass(frozen=True)
class Phase:
    """One pass over some batches per epoch. ``batches(generator)`` yields objects with ``.to(device)``."""

    name: str
    batches: Callable[[torch.Generator], Iterable[Any]]
    loss: Callable[[Any], torch.Tensor]
    size: int  # batches per epoch (for the progress bar)


@dataclass
class TrainResult:
    metric: str
    best_epoch: int
    best_score: float
    epochs: int
    train_s_per_epoch: float
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA device is available")
    return torch.device(name)


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
        self.device = resolve_device(distributed.device(self.ctx, config.device))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.trainable = bool(getattr(model, "trainable", True))
        self.model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        # fused Adam: one kernel over all parameters (on a 2-core CPU 1 ms a step for KGAT's 4.5M parameters on
        # movielens-small, against 14 ms for the default per-parameter loop, which took a third of its epoch)
        self.optimizer = torch.optim.Adam(params, lr=config.lr, fused=True) if self.trainable and params else None
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
            for batch in bar:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
                    on_device = batch.to(self.device)
                    loss = phase.loss(on_device) if self.objective is None else self.objective(phase.loss, on_device)
                if self.optimizer is not None:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                total += loss.detach().float()
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
        self.generator.set_state(state["generator"])
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
