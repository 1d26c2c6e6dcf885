"""``kgrec bench models``: our models side by side with RecBole 1.2.1 on the identical split.

Datasets:
- ``kgcn-music``: KGCN's Last.FM set from ``../shared/data/kgcn-music``; ctr protocol on a 60/20/20
  per-user split (as KGCN), ranking protocol on 80/10/10.
- ``movielens-small``: the project's own published KG (profile ``movielens``: ml-latest-small aligned to
  the Wikidata and DBpedia mirrors), with its stored train/valid/test/cold_test split.

Each (model, implementation, seed) runs in its own process, so ``peak_mem_mb`` is that run's peak RSS (and
``peak_gpu_mem_mb`` the CUDA peak on a GPU). Both implementations get the same hyperparameters (ours from
``models/defaults.toml`` for the dataset, translated for RecBole), the same epoch cap, patience and seeds.

A model is named as in the registry, or with hyperparameter overrides for an ablation row,
``kgatax:composition=hadamard`` or ``kgif:fusion=false:projection=matrix`` (:func:`model_spec`); such rows are
ours only (RecBole runs a model with a peer and no overrides).

On kgcn-music one run's Recall@20 moves by several points with the seed (the initialisation and the sampled
neighbourhoods; 1,300 test users), for RecBole as for us, so comparisons take the mean of ``--seeds`` runs:
:func:`summary` gives mean and standard deviation per (dataset, model, implementation) and :func:`markdown`
shows those, plus our mean over RecBole's for each model run on both.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("kgrec.bench")

DATASETS = ("kgcn-music", "movielens-small")
SPLIT_SEED = 2026
# RecBole's default eval_batch_size is 4,096 (user, item) pairs: one user per batch on kgcn-music. Give it
# about as many pairs per batch as our evaluator scores (256 users x the items), so it is not slowed by that.
RECBOLE_EVAL_PAIRS = 1 << 20
SHOWN = {"ranking": ("recall@20", "ndcg@20"), "ctr": ("auc", "f1")}


def load_kg(dataset: str, protocol: str, *, shared: Path, settings: Any = None):
    """The benchmark's :class:`kg_build.tables.KG` (tables and split)."""
    from kg_build.benchmarks import load_kgcn_music
    from kg_build.splits import SplitConfig

    if dataset == "kgcn-music":
        share = 0.2 if protocol == "ctr" else 0.1
        return load_kgcn_music(shared / "data" / "kgcn-music", SplitConfig(valid=share, test=share, seed=SPLIT_SEED))
    if dataset == "movielens-small":
        from pipeline import kg_store
        from pipeline.lake import Lake, LakeError

        lake = Lake(settings.lake_root)
        version = kg_store.published(lake)
        if version is None:
            raise LakeError(f"movielens-small needs the movielens profile's published KG in {settings.lake_root}: "
                            "run `kgrec -p movielens run --with-mirrors` first")
        return kg_store.read(lake, version)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def model_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value:..."`` -> (name, overrides); values parsed as JSON when they can be (numbers,
    true/false), else kept as strings. ValueError names a malformed part."""
    from models.config import parse_overrides

    name, *parts = spec.split(":")
    try:
        return name, parse_overrides(parts)
    except ValueError as exc:
        raise ValueError(f"model {spec!r}: expected name:key=value[:key=value...]; {exc}") from None


def has_peer(spec: str) -> bool:
    """Whether RecBole runs ``spec`` too: a model it has, without overrides."""
    from pipeline.bench.recbole_peer import RECBOLE_MODELS

    name, overrides = model_spec(spec)
    return name in RECBOLE_MODELS and not overrides


def run_ours(dataset: str, protocol: str, model: str, *, shared: Path, settings: Any, epochs: int | None,
             device: str, seed: int | None = None) -> dict[str, Any]:
    """Train and evaluate one of our models in a fresh process; the result row."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_ours, (dataset, protocol, model, shared, settings, epochs, device, seed))


def _ours(dataset: str, protocol: str, model: str, shared: Path, settings: Any, epochs: int | None,
          device: str, seed: int | None) -> dict[str, Any]:
    import torch

    from models.config import hyperparameters
    from models.fit import evaluate, fit
    from models.trainer import resolve_device
    from pipeline.steps.train import model_inputs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    data = model_inputs(load_kg(dataset, protocol, shared=shared, settings=settings))
    name, overrides = model_spec(model)
    hyper, config = hyperparameters(name, dataset=dataset, overrides=overrides)
    config = replace(config, device=device, epochs=epochs or config.epochs, seed=config.seed if seed is None else seed)
    fitted = fit(name, data, protocol=protocol, hyper=hyper, config=config, progress=False)
    metrics = evaluate(fitted.model, data, protocol, config)
    test = metrics.get("test", {})
    row = {"dataset": dataset, "protocol": protocol, "model": model, "implementation": "kgrec", "seed": config.seed,
           "metrics": {k: v for k, v in test.items() if k not in ("users", "pairs", "seconds")},
           "train_s_per_epoch": round(fitted.result.train_s_per_epoch, 3), "eval_s": test.get("seconds"),
           "epochs": fitted.result.epochs, "best_epoch": fitted.result.best_epoch,
           "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "device": str(resolve_device(config.device)),
           "config": {"hyper": hyper, "train": asdict(config)}}
    if "cold_test" in metrics:
        row["cold_metrics"] = {k: v for k, v in metrics["cold_test"].items() if k not in ("users", "seconds")}
    if torch.cuda.is_available():
        row["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        row["gpu"] = torch.cuda.get_device_name()
    return row


def run_recbole(python: Path, data_path: Path, dataset: str, protocol: str, model: str, *, epochs: int | None,
                timeout_s: float, seed: int | None = None) -> dict[str, Any]:
    from models.config import hyperparameters
    from pipeline.bench.recbole_peer import recbole_config, run_peer

    hyper, config = hyperparameters(model, dataset=dataset)
    seed = config.seed if seed is None else seed
    ours = {**hyper, "lr": config.lr, "batch_size": config.batch_size, "epochs": epochs or config.epochs,
            "patience": config.patience, "seed": seed, "eval_batch_pairs": RECBOLE_EVAL_PAIRS,
            "negatives": config.negatives}
    out = data_path / f"{model}-{protocol}-{seed}.json"
    row = run_peer(python, data_path=data_path, dataset=dataset, model=model, protocol=protocol,
                   config=recbole_config(model, ours, protocol), out_json=out, timeout_s=timeout_s)
    return {**row, "dataset": dataset, "protocol": protocol, "model": model, "recbole_model": row.get("model"),
            "implementation": "recbole", "seed": seed}


def bench(
    datasets: list[str],
    protocol: str,
    models: list[str],
    *,
    shared: Path,
    settings: Any,
    peer: str | None = None,
    peer_root: Path | None = None,
    epochs: int | None = None,
    device: str = "auto",
    seeds: int = 1,
    timeout_s: float = 3600,
) -> list[dict[str, Any]]:
    """Every (dataset, model, seed) row, ours then RecBole's when ``peer == "recbole"``.

    The seeds are the model's configured seed and the ``seeds - 1`` integers after it; one seed fixes the
    initialisation, the sampled KG structure and the training order (for RecBole: its ``seed``).
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    from models.config import hyperparameters

    rows: list[dict[str, Any]] = []
    python = None
    if peer == "recbole":
        from pipeline.bench.recbole_peer import ensure_venv

        python = ensure_venv(peer_root or settings.home / "peer" / "recbole-1.2.1")
    for dataset in datasets:
        with tempfile.TemporaryDirectory(prefix="kgrec-bench-") as tmp:
            if python is not None:
                from kg_build.export.recbole import write_recbole

                write_recbole(load_kg(dataset, protocol, shared=shared, settings=settings), Path(tmp), dataset)
            for model in models:
                name, overrides = model_spec(model)
                base = hyperparameters(name, dataset=dataset, overrides=overrides)[1].seed
                for seed in range(base, base + seeds):
                    began = time.perf_counter()
                    rows.append(run_ours(dataset, protocol, model, shared=shared, settings=settings, epochs=epochs,
                                         device=device, seed=seed))
                    log.info("bench: %s %s kgrec seed %d done in %.0f s: %s", dataset, model, seed,
                             time.perf_counter() - began, rows[-1]["metrics"])
                    if python is not None and has_peer(model):
                        rows.append(run_recbole(python, Path(tmp), dataset, protocol, model, epochs=epochs,
                                                timeout_s=timeout_s, seed=seed))
                        log.info("bench: %s %s recbole seed %d: %s", dataset, model, seed, rows[-1]["metrics"])
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (dataset, protocol, model, implementation), in first-seen order: the number of runs, the
    mean and sample standard deviation (0 for one run) of every metric (test, and cold-start as ``cold_<name>``),
    and the mean seconds per epoch, seconds per evaluation and epochs, and the largest peak memory."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["protocol"], r["model"], r["implementation"]), []).append(r)
    out = []
    for (dataset, protocol, model, implementation), runs in groups.items():
        values: dict[str, list[float]] = {}
        for r in runs:
            for prefix, metrics in (("", r["metrics"]), ("cold_", r.get("cold_metrics", {}))):
                for key, value in metrics.items():
                    values.setdefault(prefix + key, []).append(float(value))
        out.append({
            "dataset": dataset, "protocol": protocol, "model": model, "implementation": implementation,
            "runs": len(runs),
            "mean": {k: statistics.fmean(v) for k, v in values.items()},
            "std": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in values.items()},
            "train_s_per_epoch": statistics.fmean(r["train_s_per_epoch"] for r in runs),
            "eval_s": statistics.fmean(r["eval_s"] for r in runs),
            "epochs": statistics.fmean(r["epochs"] for r in runs),
            "peak_mem_mb": max(r["peak_mem_mb"] for r in runs),
        })
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results as Markdown: per (dataset, model, implementation) the test metrics' mean ± std over the seeds
    (cold-start Recall@20 where there is a cold split), mean seconds per epoch and per evaluation, mean epochs
    run and peak memory; then, for each model run by both implementations, ours relative to RecBole's."""
    head = ("| dataset | protocol | model | impl | runs | metrics (test, mean ± std) | cold recall@20 | s/epoch "
            "| eval s | epochs | peak MB |\n|---|---|---|---|---:|---|---|---:|---:|---:|---:|")
    lines = [head]
    groups = summary(rows)
    for g in groups:
        shown = ", ".join(_mean_std(g, k) for k in SHOWN[g["protocol"]] if k in g["mean"])
        cold = _mean_std(g, "cold_recall@20", named=False) if "cold_recall@20" in g["mean"] else ""
        lines.append(f"| {g['dataset']} | {g['protocol']} | {g['model']} | {g['implementation']} | {g['runs']} | "
                     f"{shown} | {cold} | {g['train_s_per_epoch']:.2f} | {g['eval_s']:.2f} | {g['epochs']:.1f} | "
                     f"{g['peak_mem_mb']:.0f} |")
    pairs = _pairs(groups)
    if pairs:
        lines += ["", "| dataset | protocol | model | metric: kgrec / recbole | s/epoch: kgrec / recbole "
                  "| eval s: kgrec / recbole |", "|---|---|---|---:|---:|---:|"]
        for ours, peer in pairs:
            metric = SHOWN[ours["protocol"]][0]
            lines.append(f"| {ours['dataset']} | {ours['protocol']} | {ours['model']} | "
                         f"{metric} {_ratio(ours['mean'].get(metric), peer['mean'].get(metric))} | "
                         f"{_ratio(ours['train_s_per_epoch'], peer['train_s_per_epoch'])} | "
                         f"{_ratio(ours['eval_s'], peer['eval_s'])} |")
    return "\n".join(lines) + "\n"


def _mean_std(group: dict[str, Any], key: str, *, named: bool = True) -> str:
    text = f"{group['mean'][key]:.4f}" + (f" ± {group['std'][key]:.4f}" if group["runs"] > 1 else "")
    return f"{key} {text}" if named else text


def _pairs(groups: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    by_key = {(g["dataset"], g["protocol"], g["model"], g["implementation"]): g for g in groups}
    return [(g, by_key[(*key[:3], "recbole")]) for key, g in by_key.items()
            if key[3] == "kgrec" and (*key[:3], "recbole") in by_key]


def _ratio(ours: float | None, peer: float | None) -> str:
    return "" if ours is None or not peer else f"{ours / peer:.2f}"


def write(rows: list[dict[str, Any]], json_out: Path | None, markdown_out: Path | None) -> None:
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if markdown_out is not None:
        markdown_out.write_text(markdown(rows), encoding="utf-8")
