"""Train: fit the models of ``[train]`` on the published KG and store them as new model versions.

For each model: hyperparameters from ``models/defaults.toml`` (per profile as the dataset name) with
the profile's ``[train.hyper]`` and the command line on top; training to early stopping on the
validation split; then test and cold-start metrics. The version folder appears only when complete
(:mod:`pipeline.model_store`); ``resume`` continues an interrupted run of the same model and KG.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline import __version__, kg_store, model_store
from pipeline.errors import PermanentError
from pipeline.lake import Lake, LakeError
from pipeline.settings import Settings

log = logging.getLogger("kgrec.train")
SHOWN = ("recall@20", "ndcg@20", "auc", "f1", "mrr", "hits@10")  # the test metrics in the summary line


class TrainError(ValueError, PermanentError):
    """Training cannot start (unknown model, bad hyperparameter, no KG, mismatched resume)."""


def train(
    settings: Settings,
    run_date: date,
    *,
    models: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
    reuse: bool = False,
) -> list[Path]:
    """Train every model of ``settings.train.models`` (or ``models``); returns their version folders.

    ``reuse=True`` (the Airflow task) makes a re-run of the same date idempotent: a complete version trained
    for ``run_date`` on the same KG version with the same settings is returned instead of training again, and an
    interrupted one is resumed.
    """
    kg_version, data = published_data(settings)
    log.info("train: KG version %d: %s", kg_version, data.summary())
    return [train_one(settings, name, data, kg_version, run_date=run_date, overrides=overrides, epochs=epochs,
                      device=device, resume=resume or reuse, reuse=reuse) for name in models or settings.train.models]


def published_data(settings: Settings, version: int | None = None):
    """(KG version, :class:`models.data.RecData`) of the published KG, or of ``version``."""
    from models.data import DataError

    lake = Lake(settings.lake_root)
    version = version if version is not None else kg_store.published(lake)
    if version is None:
        raise LakeError(f"no published KG in {settings.lake_root}: run `kgrec build`, `kgrec validate` and "
                        "`kgrec publish` first")
    try:
        return version, model_inputs(kg_store.read(lake, version))
    except DataError as exc:
        raise TrainError(f"KG version {version} in {settings.lake_root}: {exc}") from None


def model_inputs(kg):
    """The :class:`models.data.RecData` of a :class:`kg_build.tables.KG` (the split pairs, not the weights)."""
    from models.data import from_tables

    tables = kg.tables()
    tables.pop("interactions")  # the models read the split table; weights and times stay in the lake
    return from_tables(**tables)


def train_one(settings: Settings, name: str, data, kg_version: int, *, run_date: date | None = None,
              overrides: dict[str, Any] | None = None, epochs: int | None = None, device: str | None = None,
              resume: bool = False, reuse: bool = False) -> Path:
    from models import distributed
    from models.fit import fit

    ctx = distributed.context()  # under torchrun: rank 0 makes the version folder and writes; all ranks train
    hyper, config = _hyperparameters(settings, name, overrides)
    config = replace(config, seed=settings.seed, device=device or settings.device,
                     epochs=epochs or settings.train.epochs or config.epochs)
    protocol = settings.train.protocol
    planned = {"model": name, "kg_version": kg_version, "protocol": protocol, "hyper": hyper,
               "train": asdict(config), "data": data.summary(), "code_version": __version__,
               "run_date": run_date.isoformat() if run_date else None}
    done = distributed.from_main(_trained(settings.home, name, planned) if ctx.main else None, ctx) if reuse else None
    if done is not None:
        log.info("train: %s %s was trained for %s on KG version %d with these settings: kept, not retrained",
                 name, done.name, run_date, kg_version)
        return done
    folder = distributed.from_main(_folder(settings.home, name, planned, resume) if ctx.main else None, ctx)
    if ctx.main:
        model_store.write_json(folder / "config.json", planned)
    began = time.perf_counter()
    try:
        fitted = fit(name, data, protocol=protocol, hyper=hyper, config=config, out_dir=folder,
                     resume=resume and (folder / "last.pt").exists())
    except (TypeError, ValueError) as exc:
        if ctx.main and not (folder / "last.pt").exists():  # nothing to resume: leave no empty partial folder
            shutil.rmtree(folder)
        raise TrainError(f"{name}: {exc}") from None
    if not ctx.main:  # rank 0 evaluates and completes the version
        return distributed.from_main(None, ctx)
    metrics = _evaluate(fitted.model, data, protocol, config)
    model_store.write_json(folder / "eval.json", {"protocol": _protocol(fitted.model, protocol), **metrics})
    result = fitted.result
    model_store.write_json(folder / "config.json", {**planned, "result": {
        "metric": result.metric, "best_epoch": result.best_epoch, "best_valid": result.best_score,
        "epochs": result.epochs, "train_s_per_epoch": round(result.train_s_per_epoch, 3),
        "seconds": round(time.perf_counter() - began, 1)}})
    final = distributed.from_main(model_store.complete(folder), ctx)
    test = metrics.get("test", {})
    log.info("train: %s %s: best epoch %d of %d, valid %s %.4f, test %s (%s)", name, final.name,
             result.best_epoch, result.epochs, result.metric, result.best_score,
             ", ".join(f"{k} {v:.4f}" for k, v in test.items() if k in SHOWN),
             final)
    return final


def evaluate_model(settings: Settings, name: str, version: int | None = None) -> dict[str, Any]:
    """Re-evaluate a stored model version on its KG version; rewrites its ``eval.json``."""
    import torch

    from models.fit import build_model
    from models.trainer import TrainConfig, resolve_device

    folder = model_store.path(settings.home, name, version if version is not None else
                              model_store.latest(settings.home, name))
    config = model_store.read_json(folder / "config.json")
    _, data = published_data(settings, config["kg_version"])
    train_config = replace(TrainConfig(**config["train"]), device=settings.device)
    model = build_model(name, data, config["hyper"], seed=train_config.seed)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    model.to(resolve_device(train_config.device))
    metrics = {"protocol": _protocol(model, config["protocol"]),
               **_evaluate(model, data, config["protocol"], train_config)}
    model_store.write_json(folder / "eval.json", metrics)
    return {"model": name, "version": folder.name, **metrics}


def _protocol(model, protocol: str) -> str:
    return "link_prediction" if model.kind == "triples" else protocol


def _evaluate(model, data, protocol: str, config) -> dict[str, Any]:
    from models.fit import evaluate, evaluate_links

    if model.kind == "triples":
        return evaluate_links(model, data, config)
    return evaluate(model, data, protocol, config)


def _hyperparameters(settings: Settings, name: str, overrides: dict[str, Any] | None):
    from models.config import hyperparameters

    try:
        return hyperparameters(name, dataset=settings.profile,
                               overrides={**settings.train.hyper.get(name, {}), **(overrides or {})})
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainError(str(exc).strip("'\"")) from None


SAME_RUN = ("kg_version", "protocol", "hyper", "train", "run_date")


def _trained(home: Path, name: str, planned: dict[str, Any]) -> Path | None:
    """The newest complete version trained with the same KG, settings and run date, if any."""
    for version in reversed(model_store.versions(home, name)):
        folder = model_store.path(home, name, version)
        before = model_store.read_json(folder / "config.json")
        if all(before.get(k) == planned[k] for k in SAME_RUN):
            return folder
    return None


def _folder(home: Path, name: str, planned: dict[str, Any], resume: bool) -> Path:
    if resume and (found := model_store.partial(home, name)) is not None:
        before = model_store.read_json(found / "config.json") if (found / "config.json").exists() else {}
        same = {k: before.get(k) for k in ("kg_version", "protocol", "hyper")} == \
            {k: planned[k] for k in ("kg_version", "protocol", "hyper")}  # run_date may differ: a resume is a resume
        if not same:
            raise TrainError(f"cannot resume {found}: it was started with other settings "
                             f"(kg_version/protocol/hyper {before.get('kg_version')}/{before.get('protocol')}/"
                             f"{before.get('hyper')}); remove it or train without --resume")
        log.info("train: resuming %s", found)
        return found
    return model_store.new_partial(home, name)
