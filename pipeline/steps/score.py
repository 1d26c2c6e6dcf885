"""Score: every user's top-K items with explanations, from a trained model, into the warehouse.

Checks the warehouse first (an unreachable one fails the step before anything is computed or written), then loads
the published KG and the model (its promoted version, else the latest, unless told; refused when it was trained on
another KG version), ranks each user's unseen items (:mod:`pipeline.scoring`), renders the model's best paths as
text and JSON (:mod:`pipeline.explain_text`) and swaps the run's ``(run_date, model)`` partition in one transaction
(:mod:`pipeline.warehouse`). Scoring a list of users replaces only their lists; the partition keeps everyone
else's. With ``score.export``, the same tables go to ``lake/recommendations/model=M/run_date=D/`` afterwards.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import kg_store, model_store
from pipeline.errors import PermanentError
from pipeline.lake import Lake
from pipeline.settings import Settings, config_hash
from pipeline.steps.train import model_inputs
from pipeline.warehouse import Run, Warehouse, WarehouseError, Written

log = logging.getLogger("kgrec.score")
EXPORT = "recommendations"


class ScoreError(ValueError, PermanentError):
    """Scoring cannot start: no such model or users, or a model that does not fit the KG."""


@dataclass(frozen=True)
class ScoreResult:
    run_id: str
    model: str
    model_version: int
    kg_version: int
    users: int
    recommendations: int
    explanations: int
    cold_recommendations: int
    score_s: float
    explain_s: float
    written: Written
    warehouse: str
    export: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"score: {self.model} version={self.model_version} on KG version {self.kg_version}: {self.users:,} "
                f"users, {self.recommendations:,} recommendations ({self.cold_recommendations:,} of cold-start "
                f"items), {self.explanations:,} explanation paths; scoring {self.users / max(self.score_s, 1e-9):,.0f}"
                f" users/s, explaining {self.explain_s:.1f}s, written in "
                f"{self.written.load_s + self.written.swap_s:.1f}s (+{self.written.checks_s:.1f}s checks) to "
                f"{self.warehouse} as run {self.run_id}" + (f"; Parquet in {self.export}" if self.export else ""))


def score(settings: Settings, run_date: date, *, model: str | None = None, version: int | None = None,
          users: list[str] | None = None, k: int | None = None, paths: int | None = None,
          export: bool | None = None, progress: bool = True) -> ScoreResult:
    """Score and write one ``(run_date, model)`` partition (or the lists of ``users`` in it)."""
    import torch

    from models.explain import Explainer
    from models.trainer import resolve_device
    from pipeline.explain_text import VERBS, Labels, render
    from pipeline.scoring import best_paths, top_k

    started = datetime.now(UTC)
    name = model or settings.score.model or settings.train.models[0]
    k = k or settings.score.k
    per_item = settings.score.paths if paths is None else paths
    warehouse = Warehouse(settings.warehouse.url)
    try:
        warehouse.ensure_schema()  # unreachable: fail here, before any work and before the lake is touched
    finally:
        warehouse.dispose()  # not held open while scoring (a DuckDB file admits one writing process)
    lake = Lake(settings.lake_root)
    kg_version = kg_store.published(lake)
    if kg_version is None:
        raise ScoreError(f"no published KG in {settings.lake_root}: run `kgrec build`, `kgrec validate` and "
                         "`kgrec publish` first")
    folder = model_store.path(settings.home, name, version if version is not None else
                              model_store.serving(settings.home, name))
    model_version = int(folder.name.removeprefix("version="))
    kg = kg_store.read(lake, kg_version)
    data = model_inputs(kg)
    net = _load(name, folder, data, kg_version)
    device = resolve_device(settings.device)
    net.to(device)
    chosen = _user_indices(kg.users, users)
    log.info("score: %s version=%d on KG version %d (%s), %d users, top %d, %d paths per item, on %s", name,
             model_version, kg_version, data.summary(), len(chosen), k, per_item, device)

    began = time.perf_counter()
    recs = top_k(net, data, chosen, k, chunk=settings.score.chunk_users, device=device, progress=progress)
    score_s = time.perf_counter() - began
    began = time.perf_counter()
    explainer = Explainer(net, data, history=("train", "valid", "test", "cold_test"),
                          max_degree=settings.score.max_path_degree) if per_item else None
    rows = best_paths(explainer, recs, per_item, explain_top=settings.score.explain_top,
                      progress=progress) if explainer else None
    labels = Labels.from_kg(kg, data.entity_ids, data.relation_ids)
    verb = VERBS.get(settings.extract.domain, "liked")
    explanations = render(rows, labels, verb=verb) if rows is not None else _no_explanations()
    explain_s = time.perf_counter() - began

    recommendations = (pl.DataFrame({"user_index": recs.users.numpy(), "item_index": recs.items.numpy(),
                                     "rank": recs.ranks.numpy(), "score": recs.scores.double().numpy()})
                       .with_columns(pl.col("user_index", "item_index").cast(pl.UInt32))
                       .join(labels.users, on="user_index", how="left")
                       .join(labels.items.select("item_index", "item_id"), on="item_index", how="left")
                       .select("user_id", "item_id", pl.col("rank").cast(pl.Int16), "score"))
    cold = int(torch.isin(recs.items, data.cold_items).sum())
    eval_path = folder / "eval.json"
    metrics = {"model_eval": model_store.read_json(eval_path) if eval_path.exists() else None,
               "users": len(chosen), "k": k, "paths_per_item": per_item, "cold_recommendations": cold,
               "score_s": round(score_s, 3), "explain_s": round(explain_s, 3), "device": str(device),
               "partial": users is not None}
    run = Run(str(uuid.uuid4()), run_date, name, kg_version, model_version, recommendations.to_arrow(),
              explanations.to_arrow(), labels.items.select("item_id", "entity_iri", "title").to_arrow(), metrics,
              started, merge=users is not None)
    try:
        try:
            written = warehouse.replace_partition(run, retention_days=settings.warehouse.retention_days,
                                                  checks=settings.warehouse.checks)
        except WarehouseError as exc:
            warehouse.record_failure(run, str(exc))
            raise
        exported = _export(settings, lake, warehouse, run, written) \
            if (settings.score.export if export is None else export) else None
    finally:
        warehouse.dispose()
    result = ScoreResult(run.run_id, name, model_version, kg_version, len(chosen), len(recs), explanations.height,
                         cold, score_s, explain_s, written, warehouse.safe_url, exported, metrics)
    log.info(result.summary())
    return result


def _load(name: str, folder: Path, data, kg_version: int):
    """The stored model, refused with a clear message when it does not fit the KG it would score."""
    import torch

    from models.fit import build_model

    config = model_store.read_json(folder / "config.json")
    trained = config.get("data", {})
    now = data.summary()
    differs = {key: (trained.get(key), now[key]) for key in ("users", "items", "entities", "relations")
               if trained.get(key) != now[key]}
    if config.get("kg_version") != kg_version or differs:
        counts = ", ".join(f"{key} {was} vs {is_} now" for key, (was, is_) in differs.items()) or "same counts"
        raise ScoreError(f"{name} {folder.name} was trained on KG version {config.get('kg_version')}, but the "
                         f"published KG is version {kg_version} ({counts}): its indices do not match this KG; "
                         f"retrain it (`kgrec train --model {name}`)")
    net = build_model(name, data, config["hyper"], seed=config["train"]["seed"])
    if net.kind == "triples":
        raise ScoreError(f"{name} is a KG embedding model (link prediction), not a recommender: score with one of "
                         "the recommendation models")
    try:
        net.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    except RuntimeError as exc:
        raise ScoreError(f"{folder / 'model.pt'} does not fit {name} on KG version {kg_version}: "
                         f"{str(exc).splitlines()[-1].strip()}") from None
    return net


def _user_indices(users: pl.DataFrame, wanted: list[str] | None):
    import torch

    if wanted is None:
        return torch.from_numpy(users["user_index"].cast(pl.Int64).to_numpy().copy())
    asked = pl.DataFrame({"user_id": list(dict.fromkeys(wanted))}, schema={"user_id": pl.String})
    found = asked.join(users, on="user_id", how="left")
    unknown = found.filter(pl.col("user_index").is_null())["user_id"].to_list()
    if unknown:
        raise ScoreError(f"{len(unknown)} unknown user_id(s) (not in the published KG's users): {unknown[:10]}")
    return torch.from_numpy(found["user_index"].cast(pl.Int64).to_numpy().copy())


def _no_explanations() -> pl.DataFrame:
    return pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String, "path_rank": pl.Int16,
                                "path_json": pl.String, "explanation": pl.String})


def _export(settings: Settings, lake: Lake, warehouse: Warehouse, run: Run, written: Written) -> str:
    """The committed partition as Parquet, read back from the warehouse (so a partial run exports the whole
    partition); the model's partitions past retention are dropped."""
    key = {"model": run.model, "run_date": run.run_date.isoformat()}
    tables = {name: warehouse.frame(sql, {"run_id": run.run_id}) for name, sql in (
        ("recommendations", "select run_date, model, run_id, user_id, rank, item_id, score from recommendations "
                            "where run_id = :run_id order by user_id, rank"),
        ("explanations", "select run_date, model, run_id, user_id, item_id, path_rank, cast(path_json as text) "
                         "as path_json, explanation from recommendation_explanations where run_id = :run_id "
                         "order by user_id, item_id, path_rank"))}
    lake.write(EXPORT, key, tables, config_hash=config_hash(settings.score),
               extra={"run_id": run.run_id, "kg_version": run.kg_version, "model_version": run.model_version})
    if written.cutoff is not None:
        for old in lake.partitions(EXPORT):
            if old.get("model") == run.model and date.fromisoformat(old["run_date"]) < written.cutoff:
                lake.drop(EXPORT, old)
    return lake.partition_path(EXPORT, key)
