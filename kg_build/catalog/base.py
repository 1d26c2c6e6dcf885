"""The result of loading a catalog, and the row checks every format shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kg_build.catalog.lines import reject_duplicates, reject_if
from kg_build.schema import INTERACTIONS, ITEMS_CORE, empty, polars_schema


@dataclass(frozen=True)
class Catalog:
    """Items and interactions in the contract schemas, the rows that were quarantined, and the files read."""

    name: str
    items: pl.DataFrame
    interactions: pl.DataFrame
    rejects: pl.DataFrame
    inputs: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        users = self.interactions["user_id"].n_unique() if self.interactions.height else 0
        return (
            f"{self.name}: {self.items.height:,} items, {self.interactions.height:,} interactions "
            f"from {users:,} users, {self.rejects.height:,} rows quarantined"
        )


def finish_items(rows: pl.DataFrame, path: Path, id_name: str) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Reject rows with an empty title or a repeated id; cast the core columns to the contract.

    ``rows`` holds ``line``, ``raw`` and at least the core columns as parsed values.
    """
    rows, empty_title = reject_if(
        rows, path, pl.col("title").is_null() | (pl.col("title").str.strip_chars() == ""), "empty title"
    )
    rows, duplicates = reject_duplicates(rows, path, "item_id", id_name)
    core = polars_schema(ITEMS_CORE)
    extras = [c for c in rows.columns if c not in core and c not in ("line", "raw")]
    items = rows.select(
        [pl.col(name).cast(dtype) for name, dtype in core.items()] + extras
    )
    return items, [empty_title, duplicates]


def finish_interactions(
    rows: pl.DataFrame, path: Path, items: pl.DataFrame, id_name: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Reject interactions whose item is not in the catalog; cast to the contract schema."""
    known = items.select(pl.col("item_id"), pl.lit(True).alias("_known"))
    rows = rows.join(known, on="item_id", how="left", maintain_order="left")
    rows, unknown = reject_if(
        rows, path, pl.col("_known").is_null(),
        pl.format(f"{id_name} {{}} is not in the catalog", pl.col("item_id")),
    )
    schema = polars_schema(INTERACTIONS)
    return rows.select([pl.col(n).cast(t) for n, t in schema.items()]), unknown


def no_interactions() -> pl.DataFrame:
    return empty(INTERACTIONS)
