"""A person in the loop: the overrides file (read and applied) and the review file (written).

The overrides file is a CSV kept outside the lake (default ``$KGREC_HOME/alignment/overrides.csv``),
so nightly runs never overwrite it::

    item_id,entity_iri,note[,source]
    1,http://www.wikidata.org/entity/Q171048,Toy Story is the 1995 film
    2571,NONE,no entity for this cut of the film

``entity_iri`` ``NONE`` says the item has no entity. A row without a ``source`` applies to the
source among whose candidates its entity is (a ``NONE`` row: to every source). Overrides are
applied last and win: their items and entities are taken out before the cascade runs, and they
come out with method ``manual``, score 1 and status ``accepted`` (``unmatched`` for ``NONE``).

The review file lists the ambiguous links with the same first columns, so a reviewed row (kept
as proposed, changed to the runner-up, or set to ``NONE``) can be pasted into the overrides file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from kg_build.align.base import Side
from kg_build.align.cascade import DETAILS, LINKS
from kg_build.catalog.lines import CatalogError, read_delimited

log = logging.getLogger(__name__)
NONE = "NONE"
OVERRIDES = {"line": pl.Int64, "item_id": pl.String, "entity_iri": pl.String, "note": pl.String,
             "source": pl.String}
REVIEW_COLUMNS = ["item_id", "entity_iri", "note", "source", "reason", "item_name", "entity_name", "method",
                  "score", "margin", "runner_up_iri", "runner_up_name", "runner_up_score"]


class OverridesError(ValueError):
    """The overrides file is unusable; the message names the file and line."""


def read_overrides(path: Path) -> pl.DataFrame:
    """Rows of the overrides file (``OVERRIDES``; ``entity_iri`` null for ``NONE``); empty when absent."""
    if not path.exists():
        return pl.DataFrame(schema=OVERRIDES)
    try:
        with path.open(encoding="utf-8-sig") as fh:
            header = [h.strip() for h in fh.readline().strip().split(",")]
        missing = [c for c in ("item_id", "entity_iri") if c not in header]
        if missing:
            raise OverridesError(f"{path}:1: header lacks the column(s) {', '.join(missing)} "
                                 "(expected item_id,entity_iri,note[,source])")
        parsed = read_delimited(path, header, sep=",", header=header, quoted=True)
    except (CatalogError, UnicodeDecodeError) as exc:
        raise OverridesError(f"{path}: not a readable CSV: {exc}") from None
    if parsed.rejects.height:
        bad = parsed.rejects.row(0, named=True)
        raise OverridesError(f"{path}:{bad['line']}: {bad['reason']}")
    raw = parsed.rows
    rows = raw.select(
        pl.col("line").cast(pl.Int64),
        pl.col("item_id").fill_null("").str.strip_chars(),
        pl.col("entity_iri").fill_null("").str.strip_chars(),
        (pl.col("note") if "note" in raw.columns else pl.lit("")).fill_null("").alias("note"),
        (pl.col("source") if "source" in raw.columns else pl.lit("")).fill_null("").str.strip_chars().alias("source"),
    )
    _check(rows, path)
    return rows.with_columns(
        pl.when(pl.col("entity_iri") == NONE).then(None).otherwise(pl.col("entity_iri")).alias("entity_iri"),
        pl.when(pl.col("source") == "").then(None).otherwise(pl.col("source")).alias("source"),
    ).cast(OVERRIDES)  # type: ignore[arg-type]


def _check(rows: pl.DataFrame, path: Path) -> None:
    def fail(bad: pl.DataFrame, what: str) -> None:
        if bad.height:
            first = bad.row(0, named=True)
            raise OverridesError(f"{path}:{first['line']}: {what} (item_id {first['item_id']!r}, "
                                 f"entity_iri {first['entity_iri']!r}); {bad.height} such row(s)")

    fail(rows.filter(pl.col("item_id").fill_null("") == ""), "empty item_id")
    iri = pl.col("entity_iri").fill_null("")
    fail(rows.filter((iri != NONE) & ~iri.str.contains(r"^https?://[^\s<>\"{}|\\^`]+$")),
         f"entity_iri must be an http(s) IRI or {NONE}")
    key = [pl.col("item_id"), pl.col("source").fill_null("")]
    fail(rows.filter(pl.struct(key).is_duplicated()), "more than one override for this item and source")


def overrides_for(overrides: pl.DataFrame | None, source: str, item_ids: pl.Series, entities: Side) -> pl.DataFrame:
    """The overrides that apply to ``source`` and name a catalog item: ``item_id, entity_iri, note``."""
    if overrides is None or overrides.is_empty():
        return pl.DataFrame(schema={"item_id": pl.String, "entity_iri": pl.String, "note": pl.String})
    known = entities.names["id"].unique().implode()
    in_catalog = pl.col("item_id").is_in(item_ids.implode())
    unknown_items = overrides.filter(~in_catalog)
    if unknown_items.height:
        log.warning("overrides: %d rows name items not in the catalog (e.g. line %d, item %s), ignored",
                    unknown_items.height, unknown_items["line"][0], unknown_items["item_id"][0])
    mine = overrides.filter(in_catalog).filter(
        (pl.col("source") == source)
        | (pl.col("source").is_null() & (pl.col("entity_iri").is_null() | pl.col("entity_iri").is_in(known)))
    )
    # An explicit source beats a row without one for the same item.
    mine = mine.sort(pl.col("source").is_null()).unique("item_id", keep="first", maintain_order=True)
    return mine.select("item_id", "entity_iri", "note")


def manual_links(manual: pl.DataFrame, items: Side, entities: Side, source: str) -> pl.DataFrame:
    """Link rows (``LINKS`` + ``DETAILS``) for the overrides of one source."""
    names_i = items.names.filter(pl.col("primary")).unique("id", keep="first").select(
        "id", pl.col("name").alias("item_name"))
    names_e = entities.names.filter(pl.col("primary")).unique("id", keep="first").select(
        "id", pl.col("name").alias("entity_name"))
    is_none = pl.col("entity_iri").is_null()
    return (
        manual.join(names_i, left_on="item_id", right_on="id", how="left")
        .join(names_e, left_on="entity_iri", right_on="id", how="left")
        .with_columns(
            pl.lit(source).alias("source"),
            pl.lit("manual").alias("method"),
            pl.when(is_none).then(0.0).otherwise(1.0).alias("score"),
            pl.when(is_none).then(0.0).otherwise(1.0).alias("margin"),
            pl.when(is_none).then(pl.lit("unmatched")).otherwise(pl.lit("accepted")).alias("status"),
            pl.coalesce("entity_name", "entity_iri").alias("entity_name"),
            *[pl.lit(None, DETAILS[c]).alias(c) for c in ("runner_up_iri", "runner_up_name", "runner_up_score")],
            pl.format("override: {}", pl.col("note")).alias("reason"),
        )
        .select(list(LINKS) + list(DETAILS))
        .cast(LINKS | DETAILS)  # type: ignore[arg-type]
    )


def review_table(links: pl.DataFrame) -> pl.DataFrame:
    """The ambiguous links, most doubtful first, in a shape the overrides file accepts."""
    return (
        links.filter(pl.col("status") == "ambiguous")
        .with_columns(pl.lit("").alias("note"))
        .sort(["score", "margin", "item_id"])
        .select(REVIEW_COLUMNS)
        .with_columns(pl.col(pl.Float32).round(3))
    )
