"""Step ``ingest``: load the catalog and its interactions into the lake for one run date.

Writes ``lake/catalog/run_date=D/{items,rejects}.parquet`` and
``lake/interactions/run_date=D/interactions.parquet`` (plus ``synthetic_users.parquet`` for a
synthetic log). Re-running a date replaces its partitions; a crash leaves the previous ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date

import polars as pl

from kg_build.catalog import LOADERS, Catalog, load_interactions_csv
from kg_build.catalog.base import no_interactions
from kg_build.schema import INTERACTIONS, REJECTS
from kg_build.synthetic import generate
from pipeline.lake import Lake, file_fingerprint, run_date_key
from pipeline.settings import CatalogSettings, Settings, config_hash

log = logging.getLogger(__name__)
SHOW_REJECTS = 10


@dataclass(frozen=True)
class IngestResult:
    catalog_path: str
    interactions_path: str
    items: int
    interactions: int
    users: int
    rejects: int

    def summary(self) -> str:
        return (
            f"ingest: {self.items:,} items, {self.interactions:,} interactions from {self.users:,} users, "
            f"{self.rejects:,} rows quarantined -> {self.catalog_path}, {self.interactions_path}"
        )


def load_catalog(cfg: CatalogSettings) -> tuple[Catalog, dict[str, pl.DataFrame]]:
    """Load the configured catalog; return it with extra tables for the interactions partition."""
    catalog = LOADERS[cfg.format](cfg.path)
    extra_tables: dict[str, pl.DataFrame] = {}
    if cfg.interactions == "synthetic":
        synthetic = generate(
            catalog.items, users=cfg.synthetic.users, seed=cfg.synthetic.seed,
            mean_items=cfg.synthetic.mean_items, affinity=cfg.synthetic.affinity,
        )
        catalog = replace(catalog, interactions=synthetic.interactions)
        extra_tables["synthetic_users"] = synthetic.profiles
    elif cfg.interactions == "none":
        catalog = replace(catalog, interactions=no_interactions())
    elif cfg.interactions != "default":
        interactions, rejects = load_interactions_csv(cfg.interactions, catalog.items)
        catalog = replace(
            catalog, interactions=interactions, rejects=pl.concat([catalog.rejects, *rejects]),
            inputs=[*catalog.inputs, cfg.interactions],
        )
    if cfg.limit is not None and catalog.items.height > cfg.limit:
        log.info("ingest: catalog.limit keeps the first %d of %d items", cfg.limit, catalog.items.height)
        items = catalog.items.head(cfg.limit)
        kept = catalog.interactions.filter(pl.col("item_id").is_in(items["item_id"].implode()))
        catalog = replace(catalog, items=items, interactions=kept)
    return catalog, extra_tables


def ingest(settings: Settings, run_date: date) -> IngestResult:
    catalog, extra_tables = load_catalog(settings.catalog)
    report_rejects(catalog)
    lake = Lake(settings.lake_root)
    key = run_date_key(run_date)
    common = dict(
        config_hash=config_hash(settings.catalog),
        inputs=[file_fingerprint(p) for p in catalog.inputs],
        extra={"catalog": catalog.name, "format": settings.catalog.format},
    )
    lake.write(
        "catalog", key, {"items": catalog.items, "rejects": catalog.rejects}, schemas={"rejects": REJECTS}, **common
    )
    lake.write(
        "interactions", key, {"interactions": catalog.interactions, **extra_tables},
        schemas={"interactions": INTERACTIONS}, **common,
    )
    result = IngestResult(
        catalog_path=lake.partition_path("catalog", key),
        interactions_path=lake.partition_path("interactions", key),
        items=catalog.items.height,
        interactions=catalog.interactions.height,
        users=catalog.interactions["user_id"].n_unique(),
        rejects=catalog.rejects.height,
    )
    log.info(result.summary())
    return result


def report_rejects(catalog: Catalog) -> None:
    """Log the first quarantined rows (file, line, reason) and how many more there are."""
    if catalog.rejects.is_empty():
        return
    for row in catalog.rejects.head(SHOW_REJECTS).iter_rows(named=True):
        log.warning("%s:%d: %s", row["file"], row["line"], row["reason"])
    if catalog.rejects.height > SHOW_REJECTS:
        log.warning("... and %d more quarantined rows (rejects.parquet)", catalog.rejects.height - SHOW_REJECTS)
