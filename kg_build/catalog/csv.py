"""A catalog in plain CSV files, any shop's export: items (and optionally interactions).

Items need ``item_id`` and ``title``; ``year`` and ``imdb_id`` are optional; every other column
is kept as an extra attribute, and the columns in ``LIST_COLUMNS`` hold "|"-separated lists.
Interactions need ``user_id``, ``item_id``, ``weight`` and optionally ``ts`` (ISO 8601).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kg_build.catalog.base import Catalog, finish_interactions, finish_items, no_interactions
from kg_build.catalog.lines import CatalogError, no_rejects, read_delimited, reject_if
from kg_build.schema import LIST_COLUMNS


def load_csv(items_path: Path, interactions_path: Path | None = None) -> Catalog:
    columns = _header(items_path)
    missing = [c for c in ("item_id", "title") if c not in columns]
    if missing:
        raise CatalogError(f"{items_path}:1: header lacks the required column(s) {', '.join(missing)}")
    parsed = read_delimited(items_path, columns, sep=",", header=columns, quoted=True)
    rows = parsed.rows.with_columns(pl.col("item_id").str.strip_chars(), pl.col("title").str.strip_chars())
    rows = rows.with_columns(
        [pl.lit(None, pl.String).alias(c) for c in ("year", "imdb_id") if c not in columns]
    )
    year = pl.col("year").str.strip_chars()
    rows, bad_year = reject_if(
        rows, items_path, (year != "") & year.cast(pl.Int16, strict=False).is_null(),
        pl.format("year is not a number: {}", pl.col("year")),
    )
    rows = rows.with_columns(
        year.cast(pl.Int16, strict=False).alias("year"),
        pl.when(pl.col("imdb_id").str.strip_chars() != "").then(pl.col("imdb_id").str.strip_chars()).alias("imdb_id"),
        *[
            pl.when(pl.col(c) == "").then(pl.lit([], pl.List(pl.String))).otherwise(pl.col(c).str.split("|")).alias(c)
            for c in LIST_COLUMNS
            if c in columns
        ],
    )
    items, checks = finish_items(rows, items_path, "item_id")
    rejects = [parsed.rejects, bad_year, *checks]
    inputs = [items_path]
    interactions = no_interactions()
    if interactions_path is not None:
        interactions, more = load_interactions_csv(interactions_path, items)
        rejects += more
        inputs.append(interactions_path)
    return Catalog(items_path.name, items, interactions, pl.concat(rejects), inputs)


def load_interactions_csv(path: Path, items: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    columns = _header(path)
    wanted = ["user_id", "item_id", "weight"] + (["ts"] if "ts" in columns else [])
    if columns != wanted:
        raise CatalogError(f"{path}:1: header is {','.join(columns)!r}, expected 'user_id,item_id,weight[,ts]'")
    parsed = read_delimited(path, columns, sep=",", header=columns, quoted=True)
    rows = parsed.rows.with_columns(pl.col("user_id").str.strip_chars(), pl.col("item_id").str.strip_chars())
    rows, no_user = reject_if(rows, path, pl.col("user_id") == "", "empty user_id")
    weight = pl.col("weight").str.strip_chars().cast(pl.Float32, strict=False)
    rows, bad_weight = reject_if(
        rows, path, weight.is_null(), pl.format("weight is not a number: {}", pl.col("weight"))
    )
    if "ts" in columns:
        ts = pl.col("ts").str.strip_chars().str.to_datetime(time_zone="UTC", strict=False)
        rows, bad_ts = reject_if(
            rows, path, (pl.col("ts") != "") & ts.is_null(), pl.format("ts is not ISO 8601: {}", pl.col("ts"))
        )
        rows = rows.with_columns(ts.dt.cast_time_unit("us").alias("ts"))
    else:
        bad_ts = no_rejects()
        rows = rows.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("ts"))
    rows = rows.with_columns(weight.alias("weight"))
    interactions, unknown = finish_interactions(rows, path, items, "item_id")
    return interactions, [parsed.rejects, no_user, bad_weight, bad_ts, unknown]


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise CatalogError(f"{path}: file not found")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [c.strip().lstrip("\ufeff") for c in fh.readline().rstrip("\r\n").split(",")]
