"""``kgrec bench gpu``: every model on the CPU and on CUDA, on kgcn-music and on the amazon-book-scale set.

Sections (``--section``, each appends one JSON object per measurement to ``--json``, so a run cut short keeps what
it measured):

- ``env``: torch, CUDA, the GPU, CPU threads.
- ``music-speed``: each model trains ``--epochs`` epochs on kgcn-music (ranking split, 80/10/10) on each device:
  seconds per training epoch (all epochs, and the epochs after the first, which holds CUDA graph captures and
  warm-up), seconds per validation, test metrics, peak GPU memory.
- ``music-parity``: each model trains to early stopping (``--parity-epochs`` cap, the same on every device) with
  ``--seeds`` seeds on each device; the test metrics say whether the GPU reaches what the CPU reaches.
- ``amazon-speed``: KGAT's real amazon-book interactions on a seeded SYNTHETIC KG of the paper's size
  (:mod:`pipeline.bench.amazon`): one training epoch per model (for the models listed in ``ESTIMATED``, the
  first ``--max-batches`` batches of each phase, scaled to a whole epoch and marked ``estimated``), then a
  full-ranking evaluation of every test user.
- ``amazon-score``: that set with 100,000 users published into a temporary home, a model trained there for one
  epoch by the ``train`` step, then the ``score`` step: top 20 for every user, the 3 best paths for each user's top
  3, into DuckDB.
- ``ddp``: run under ``torchrun --nproc-per-node N``: KGAT trains two epochs on kgcn-music in N processes (NCCL on
  GPUs, gloo on CPUs).

``python -m pipeline.bench.gpu`` takes the same arguments as ``kgrec bench gpu`` without importing the CLI's other
commands (a GPU machine needs torch, polars, pyarrow, DuckDB and SQLAlchemy only). ``--report`` prints the Markdown tables of the README from one or more such JSON-lines files (a CPU run here and a
GPU run elsewhere combine). Parity: a model's GPU mean test Recall@20 is within ``PARITY_TOLERANCE`` of its CPU
mean, the seed noise of kgcn-music (README).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

log = logging.getLogger("kgrec.bench")

SECTIONS = ("env", "music-speed", "music-parity", "amazon-speed", "amazon-score", "ddp")
DEFAULT_SECTIONS = SECTIONS[:-1]  # ddp runs under torchrun
PARITY_MODELS = ("bprmf", "cke", "kgat", "kgcn", "kgnnls", "ripplenet")
ESTIMATED = ("kgif", "kgatax", "pathrec", "transe", "transr", "distmult", "complex")  # slow per epoch at scale
PARITY_TOLERANCE = 0.015  # absolute test Recall@20: what one seed moves it by on kgcn-music
SCORE_USERS = 100_000
RUN_DATE = date(2026, 12, 1)


def music(shared: Path):
    """kgcn-music's ranking split (80/10/10, seed 2026) as :class:`models.data.RecData`."""
    from kg_build.benchmarks import load_kgcn_music
    from kg_build.splits import SplitConfig
    from pipeline.steps.train import model_inputs

    return model_inputs(load_kgcn_music(shared / "data" / "kgcn-music", SplitConfig(valid=0.1, test=0.1, seed=2026)))


def amazon(shared: Path, users: int | None = None):
    """The amazon-book-scale set (real interactions, synthetic KG) as :class:`models.data.RecData`."""
    from pipeline.bench.amazon import load_amazon
    from pipeline.steps.train import model_inputs

    return model_inputs(load_amazon(shared / "data" / "kgat-amazon-book", users=users))


def run(sections: Iterable[str], *, shared: Path, out: Path, devices: list[str], models: list[str],
        epochs: int = 3, seeds: int = 2, parity_epochs: int = 40, max_batches: int = 40,
        score_models: list[str] | None = None) -> None:
    """Run the ``sections`` in order, appending their rows to ``out`` (JSON lines)."""
    for section in sections:
        if section not in SECTIONS:
            raise ValueError(f"unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
    if any(device.startswith("cuda") for device in devices):
        _warm_up()
    for section in sections:
        began = time.perf_counter()
        if section == "env":
            _write(out, environment())
        elif section == "music-speed":
            data = music(shared)
            for device, name in itertools.product(devices, models):
                _write(out, _guarded(section, name, device, lambda: speed_row(data, name, device, epochs)))
        elif section == "music-parity":
            data = music(shared)
            for device, name, seed in itertools.product(devices, [m for m in models if m in PARITY_MODELS],
                                                        range(2026, 2026 + seeds)):
                _write(out, _guarded(section, name, device,
                                     lambda: parity_row(data, name, device, seed, parity_epochs)))
        elif section == "amazon-speed":
            data = amazon(shared)
            for device, name in itertools.product(devices, models):
                limit = max_batches if name in ESTIMATED else None
                _write(out, _guarded(section, name, device, lambda: scale_row(data, name, device, limit)))
        elif section == "amazon-score":
            for name in score_models or ["kgat"]:
                _write(out, _guarded(section, name, devices[-1], lambda: score_row(shared, name, devices[-1])))
        elif section == "ddp":
            row = _guarded(section, "kgat", devices[-1], lambda: ddp_row(music(shared), devices[-1]))
            if row.get("rank", 0) == 0:
                _write(out, row)
        log.info("bench gpu: %s done in %.0f s", section, time.perf_counter() - began)


def _warm_up() -> None:
    """CUDA's context, cuBLAS and the caching allocator start before any timed step (the first model run would
    otherwise carry them)."""
    import torch

    x = torch.randn(512, 512, device="cuda")
    (x @ x).sum().item()


def environment() -> dict[str, Any]:
    import torch

    row = {"step": "env", "torch": torch.__version__, "cuda": torch.cuda.is_available(),
           "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.machine()}
    if torch.cuda.is_available():
        row["gpu"] = torch.cuda.get_device_name()
        row["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return row


def speed_row(data, name: str, device: str, epochs: int) -> dict[str, Any]:
    """A few epochs of ``name`` (no early stop): per-epoch seconds, validation seconds, test metrics."""
    from models.config import hyperparameters

    hyper, config = hyperparameters(name, dataset="kgcn-music")
    config = replace(config, device=device, epochs=epochs, patience=epochs + 1)
    return _fit_row("music-speed", data, name, hyper, config)


def parity_row(data, name: str, device: str, seed: int, cap: int) -> dict[str, Any]:
    """``name`` to early stopping (at most ``cap`` epochs) with ``seed``: its test metrics."""
    from models.config import hyperparameters

    hyper, config = hyperparameters(name, dataset="kgcn-music")
    return _fit_row("music-parity", data, name, hyper, replace(config, device=device, seed=seed,
                                                                epochs=min(cap, config.epochs)))


def _fit_row(step: str, data, name: str, hyper: dict[str, Any], config) -> dict[str, Any]:
    from models.fit import evaluate, evaluate_links, fit

    _reset_peak(config.device)
    began = time.perf_counter()
    fitted = fit(name, data, protocol="ranking", hyper=hyper, config=config, progress=False)
    wall = time.perf_counter() - began
    model = fitted.model
    test = (evaluate_links(model, data, config) if model.kind == "triples" else
            evaluate(model, data, "ranking", config, splits=("test",)))["test"]
    history = fitted.result.history
    train_s = [h["train_s"] for h in history]
    return {"step": step, "model": name, "device": config.device, "seed": config.seed, "epochs": len(history),
            "best_epoch": fitted.result.best_epoch, "s_per_epoch": round(statistics.fmean(train_s), 4),
            "s_per_epoch_after_first": round(statistics.fmean(train_s[1:]), 4) if len(train_s) > 1 else None,
            "valid_eval_s": [h["eval_s"] for h in history][:5], "fit_wall_s": round(wall, 2),
            "test": {k: round(v, 4) if isinstance(v, float) else v for k, v in test.items()},
            "precision": config.precision, "graph_replays": fitted.result.graph_replays, **_peak(config.device)}


def scale_row(data, name: str, device: str, max_batches: int | None) -> dict[str, Any]:
    """One epoch of ``name`` on the amazon-book-scale set (or the first ``max_batches`` batches of each phase,
    scaled), then a timed full-ranking evaluation of every test user."""
    import torch

    from models.config import hyperparameters
    from models.fit import build_model, evaluate, interaction_phases, num_batches
    from models.sampling import triple_batches
    from models.trainer import Phase, Trainer, training_device

    hyper, config = hyperparameters(name, dataset="amazon-book")
    config = replace(config, device=device, epochs=1, patience=2)
    _reset_peak(device)
    torch.manual_seed(config.seed)
    model = build_model(name, data, hyper, seed=config.seed)
    target = training_device(config)
    if model.kind == "triples":
        kg = data.kg.to(target)
        phases = [Phase("kg", lambda g: triple_batches(kg, config.batch_size, g), model.loss,
                        num_batches(kg.num_triples, config.batch_size), "kg" in model.graph_phases)]
    else:
        phases = interaction_phases(model, data, config, target)
    scale = 1.0
    if max_batches is not None:  # time the first batches only; an epoch is that many times longer
        total = sum(p.size for p in phases)
        phases = [replace(p, batches=_first(p.batches, max_batches), size=min(p.size, max_batches)) for p in phases]
        scale = total / sum(p.size for p in phases)
    trainer = Trainer(model, phases, lambda m: {"none": 0.0}, metric="none", config=config, progress=False)
    result = trainer.fit()
    row = {"step": "amazon-speed", "model": name, "device": device, "batches": sum(p.size for p in phases),
           "s_per_epoch": round(result.train_s_per_epoch * scale, 3), "estimated": max_batches is not None,
           "batch_size": config.batch_size, "graph_replays": result.graph_replays, "data": data.summary()}
    if model.kind != "triples":
        began = time.perf_counter()
        test = evaluate(model, data, "ranking", config, splits=("test",))["test"]
        row["eval_s"] = round(time.perf_counter() - began, 3)
        row["eval_users"] = test["users"]
        row["test_recall@20"] = round(test["recall@20"], 4)
    return {**row, **_peak(device)}


def _first(batches, n: int):
    return lambda g: itertools.islice(batches(g), n)


def score_row(shared: Path, name: str, device: str) -> dict[str, Any]:
    """The ``train`` and ``score`` steps on the amazon-book-scale set with 100,000 users, into DuckDB."""
    from pipeline.bench.amazon import load_amazon, publish
    from pipeline.settings import load_settings
    from pipeline.steps.score import score
    from pipeline.steps.train import published_data, train_one

    with tempfile.TemporaryDirectory(prefix="kgrec-gpu-score-") as tmp:
        home = Path(tmp)
        began = time.perf_counter()
        kg = load_amazon(shared / "data" / "kgat-amazon-book", users=SCORE_USERS)
        version = publish(home, kg, RUN_DATE, validated=_has_great_expectations())
        settings = load_settings("sample", overrides={"home": str(home), "device": device,
                                                      "score": {"explain_top": 3, "k": 20, "paths": 3}},
                                 environ={})
        published_s = time.perf_counter() - began
        kg_version, data = published_data(settings)
        began = time.perf_counter()
        train_one(settings, name, data, kg_version, run_date=RUN_DATE, epochs=1, device=device)
        train_s = time.perf_counter() - began
        _reset_peak(device)
        began = time.perf_counter()
        result = score(settings, RUN_DATE, model=name, progress=False)
        wall = time.perf_counter() - began
    return {"step": "amazon-score", "model": name, "device": device, "users": result.users,
            "items": data.num_items, "kg_version": version, "recommendations": result.recommendations,
            "explanations": result.explanations, "score_wall_s": round(wall, 2), "score_s": round(result.score_s, 2),
            "explain_s": round(result.explain_s, 2), "write_s": round(result.written.load_s + result.written.swap_s, 2),
            "checks_s": round(result.written.checks_s, 2), "publish_s": round(published_s, 1),
            "train_1_epoch_s": round(train_s, 1), "warehouse": "duckdb", **_peak(device)}


def ddp_row(data, device: str) -> dict[str, Any]:
    """KGAT for two epochs in this ``torchrun`` process group: the backend, ranks and the epochs' losses."""
    import torch.distributed as dist

    from models import distributed
    from models.config import hyperparameters
    from models.fit import fit

    ctx = distributed.context()
    if not ctx.distributed and "WORLD_SIZE" not in os.environ:
        raise ValueError("the ddp section runs under torchrun (torchrun --nproc-per-node N -m pipeline.bench.gpu ...)")
    hyper, config = hyperparameters("kgat", dataset="kgcn-music")
    fitted = fit("kgat", data, protocol="ranking", hyper=hyper, config=replace(config, device=device, epochs=2,
                                                                                 patience=3), progress=False)
    return {"step": "ddp", "model": "kgat", "device": device, "rank": ctx.rank, "world": ctx.world,
            "backend": dist.get_backend() if dist.is_initialized() else "none (one process)",
            "losses": [h["loss"] for h in fitted.result.history],
            "valid_recall@20": [round(h["valid"]["recall@20"], 4) for h in fitted.result.history]}


def _has_great_expectations() -> bool:
    import importlib.util

    return importlib.util.find_spec("great_expectations") is not None


def _guarded(step: str, name: str, device: str, fn) -> dict[str, Any]:
    """``fn()``'s row, or a row with the error (one failing model does not end the run)."""
    began = time.perf_counter()
    try:
        row = fn()
    except Exception as exc:  # noqa: BLE001  a benchmark row records any failure and goes on
        log.exception("bench gpu: %s %s on %s failed", step, name, device)
        row = {"step": step, "model": name, "device": device, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    log.info("bench gpu: %s %s %s: %.1f s", step, name, device, time.perf_counter() - began)
    return row


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
    return {}


def _write(out: Path, row: dict[str, Any]) -> None:
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``kgrec bench gpu`` (and of ``python -m pipeline.bench.gpu``)."""
    parser.add_argument("--section", action="append", dest="sections", metavar="NAME",
                        help=f"a section to run (repeatable; default: {', '.join(DEFAULT_SECTIONS)}, in order)")
    parser.add_argument("--devices", default=None,
                        help="comma-separated, e.g. cpu,cuda (default: cpu, and cuda when present)")
    parser.add_argument("--models", default=None, help="comma-separated (default: every registered model)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per model in music-speed (default 3)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per model and device in music-parity (default 2)")
    parser.add_argument("--parity-epochs", type=int, default=40, help="epoch cap in music-parity (default 40)")
    parser.add_argument("--max-batches", type=int, default=40,
                        help="batches per phase timed for the slow models at amazon scale (default 40)")
    parser.add_argument("--score-models", default="kgat", help="models the amazon-score section scores with")
    parser.add_argument("--json", type=Path, metavar="OUT.jsonl", help="where the rows go (appended)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="IN.jsonl",
                        help="print the tables of these files instead of running")
    parser.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared data folder")


def main(args: argparse.Namespace) -> int:
    """Run the sections the arguments name (or print ``--report``). ValueError names a bad argument."""
    import sys

    import torch

    from models import MODELS

    if args.report:
        sys.stdout.write(report(read(args.report)))
        return 0
    if args.json is None:
        raise ValueError("bench gpu needs --json OUT.jsonl (or --report IN.jsonl ...)")
    devices = args.devices.split(",") if args.devices else ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    models = args.models.split(",") if args.models else list(MODELS)
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    run(args.sections or list(DEFAULT_SECTIONS), shared=args.shared, out=args.json, devices=devices, models=models,
        epochs=args.epochs, seeds=args.seeds, parity_epochs=args.parity_epochs, max_batches=args.max_batches,
        score_models=args.score_models.split(","))
    return 0


def read(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths for line in Path(path).read_text().splitlines() if line.strip()]


def report(rows: list[dict[str, Any]]) -> str:
    """The README's tables: kgcn-music speed per device, parity, amazon-book scale, scoring."""
    env = [r for r in rows if r["step"] == "env"]
    lines = ["machines: " + "; ".join(f"{r.get('gpu', 'CPU')} ({r['cpus']} CPUs, torch {r['torch']})" for r in env), ""]
    speed = [r for r in rows if r["step"] == "music-speed" and "error" not in r]
    if speed:
        lines += ["| model | CPU s/epoch | GPU first epoch s | GPU later epochs s | later GPU / CPU |",
                  "|---|---:|---:|---:|---:|"]
        for name in dict.fromkeys(r["model"] for r in speed):
            per = {r["device"].split(":")[0]: r for r in speed if r["model"] == name}
            cpu, gpu = per.get("cpu"), per.get("cuda")
            steady = {d: r["s_per_epoch_after_first"] or r["s_per_epoch"] for d, r in per.items()}
            first = _first_epoch(gpu) if gpu else None
            ratio = steady["cuda"] / steady["cpu"] if cpu and gpu and steady["cpu"] else None
            lines.append(f"| {name} | {_num(steady.get('cpu'))} | {_num(first)} | {_num(steady.get('cuda'))} | "
                         f"{_num(ratio, 2)} |")
        lines.append("")
    lines += _parity(rows)
    scale = [r for r in rows if r["step"] == "amazon-speed" and "error" not in r]
    if scale:
        lines += ["| model | device | s/epoch | eval s (all test users) | peak GPU MB |", "|---|---|---:|---:|---:|"]
        for r in scale:
            est = " (est.)" if r["estimated"] else ""
            lines.append(f"| {r['model']} | {r['device']} | {r['s_per_epoch']:.2f}{est} | {r.get('eval_s', '')} | "
                         f"{r.get('peak_gpu_mb', '')} |")
        lines.append("")
    for r in rows:
        if r["step"] == "amazon-score" and "error" not in r:
            lines.append(f"score {r['model']} on {r['device']}: {r['users']:,} users x {r['items']:,} items, "
                         f"{r['recommendations']:,} recommendations, {r['explanations']:,} paths in "
                         f"{r['score_wall_s']} s (scoring {r['score_s']} s, explaining {r['explain_s']} s, "
                         f"writing {r['write_s']} s + checks {r['checks_s']} s)")
    errors = [r for r in rows if "error" in r]
    lines += [f"FAILED {r['step']} {r['model']} {r['device']}: {r['error'][:200]}" for r in errors]
    return "\n".join(lines) + "\n"


def _first_epoch(row: dict[str, Any]) -> float:
    """The first epoch's seconds (CUDA graph captures and first kernel loads), from the mean and the later mean."""
    later = row["s_per_epoch_after_first"]
    return row["s_per_epoch"] if later is None else row["s_per_epoch"] * row["epochs"] - later * (row["epochs"] - 1)


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _parity(rows: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in rows if r["step"] == "music-parity" and "error" not in r]
    if not runs:
        return []
    lines = ["| model | CPU Recall@20 | GPU Recall@20 | difference | within tolerance |", "|---|---:|---:|---:|---|"]
    for name in dict.fromkeys(r["model"] for r in runs):
        per = {d: [r["test"]["recall@20"] for r in runs if r["model"] == name and r["device"].startswith(d)]
               for d in ("cpu", "cuda")}
        if not per["cpu"] or not per["cuda"]:
            continue
        cpu, gpu = statistics.fmean(per["cpu"]), statistics.fmean(per["cuda"])
        lines.append(f"| {name} | {_spread(per['cpu'])} | {_spread(per['cuda'])} | {gpu - cpu:+.4f} | "
                     f"{'yes' if abs(gpu - cpu) <= PARITY_TOLERANCE else 'NO'} |")
    return [*lines, ""]


def _spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.4f}" + (f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else "") + f" (n={len(values)})"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    cli = argparse.ArgumentParser(prog="python -m pipeline.bench.gpu", description=__doc__.splitlines()[0])
    add_arguments(cli)
    raise SystemExit(main(cli.parse_args()))
