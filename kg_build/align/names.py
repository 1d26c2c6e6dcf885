"""Name tables: one row per (record, name) for catalog items and for KG candidate entities.

Both sides get the same columns, so every matcher compares like with like::

    id, name, norm, core, squash, numbers, year (i16, null when unknown), kind (str, null), primary (bool)

``primary`` marks the main title / ``rdfs:label`` (alternative titles and ``skos:altLabel`` are
not primary). ``numbers`` are the distinct number tokens of ``norm``, sorted (to tell a film from its sequel). A name
whose ``norm`` is empty (a title of only punctuation) is dropped. A catalog title's parentheses hold
alternative titles ("Seven (a.k.a. Se7en)"); a KG label's are disambiguators, whether known or
not ("Alive (1993 film)", "City (Comma) State"): they never make an alternative name.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from kg_build.align.normalize import core, norm, squash, title_parts

COLUMNS = ["id", "name", "norm", "core", "squash", "numbers", "year", "kind", "primary"]


def item_names(items: pl.DataFrame) -> pl.DataFrame:
    """Names of catalog items (``item_id``, ``title`` and optionally ``year``)."""
    year = pl.col("year").cast(pl.Int16) if "year" in items.columns else pl.lit(None, pl.Int16)
    parts = items.select(
        pl.col("item_id").alias("id"), title_parts(pl.col("title")).alias("p"), year.alias("catalog_year")
    ).unnest("p")
    parts = parts.with_columns(pl.coalesce("catalog_year", "year").alias("year"))
    return _finish(parts)


@dataclass(frozen=True)
class Candidates:
    """KG candidate entities: their names, their year, their external ids."""

    names: pl.DataFrame  # COLUMNS, id = entity IRI
    ids: pl.DataFrame  # id (entity IRI), id_name, value


def entity_names(
    triples: pl.DataFrame,
    *,
    labels: list[str],
    years: list[str],
    external_ids: dict[str, str],
) -> Candidates:
    """Names of candidates from raw triples: ``labels[0]`` is primary, later label properties are alternatives.

    The year is the earliest value of the ``years`` properties, else the disambiguator's year.
    """
    label_rank = {iri: rank for rank, iri in enumerate(labels)}
    named = triples.filter(pl.col("predicate").is_in(labels)).select(
        pl.col("subject").alias("id"),
        pl.col("object").alias("title"),
        (pl.col("predicate").replace_strict(label_rank, return_dtype=pl.Int8) == 0).alias("primary"),
    )
    prop_years = (
        triples.filter(pl.col("predicate").is_in(years))
        .select(
            pl.col("subject").alias("id"),
            pl.col("object").str.extract(r"^(-?\d{4})", 1).cast(pl.Int16, strict=False),
        )
        .group_by("id")
        .agg(pl.col("object").min().alias("prop_year"))
    )
    parts = named.with_columns(title_parts(pl.col("title")).alias("p")).unnest("p")
    parts = parts.with_columns(pl.lit([], pl.List(pl.String)).alias("alts"))
    parts = parts.join(prop_years, on="id", how="left").with_columns(pl.coalesce("prop_year", "year").alias("year"))
    names = _finish(parts, primary_col="primary")
    id_names = {iri: name for name, iri in external_ids.items()}
    ids = triples.filter(pl.col("predicate").is_in(list(id_names))).select(
        pl.col("subject").alias("id"),
        pl.col("predicate").replace_strict(id_names, return_dtype=pl.String).alias("id_name"),
        pl.col("object").str.strip_chars().alias("value"),
    ).unique()
    return Candidates(names=names, ids=ids)


def _finish(parts: pl.DataFrame, primary_col: str | None = None) -> pl.DataFrame:
    """Explode main + alternative names, normalise, drop empty ones, deduplicate."""
    primary = pl.col(primary_col) if primary_col else pl.lit(True)
    mains = parts.select("id", pl.col("main").alias("name"), "year", "kind", primary.alias("primary"))
    alts = parts.select(
        "id", pl.col("alts").alias("name"), "year", "kind", pl.lit(False).alias("primary")
    ).explode("name")
    names = pl.concat([mains, alts]).drop_nulls("name").with_columns(norm(pl.col("name")).alias("norm"))
    names = names.filter(pl.col("norm") != "").with_columns(
        core(pl.col("norm"), pl.col("name")).alias("core"),
        squash(pl.col("norm")).alias("squash"),
        pl.col("norm").str.extract_all(r"\b\d+\b").list.unique().list.sort().list.join(" ").alias("numbers"),
    )
    names = names.sort("id", "primary", "name", descending=[False, True, False])
    return names.unique(subset=["id", "norm"], keep="first", maintain_order=True).select(COLUMNS)
