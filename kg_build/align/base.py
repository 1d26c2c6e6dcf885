"""What matchers share: the two sides they compare, the pairs they return, and the year rule.

A matcher is a small class with a ``method`` name and ``match(items, entities) -> pairs``, in the
spirit of Splink's comparison levels; :mod:`kg_build.align.cascade` runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

PAIRS = {"item_id": pl.String, "entity_iri": pl.String, "score": pl.Float32, "item_name": pl.String,
         "entity_name": pl.String}
SAME_YEAR, NEAR_YEAR, NO_YEAR = 1.0, 0.97, 0.92  # how much a year agreement is worth
ALT_NAME = 0.98  # a match through an alternative title or altLabel rather than the main ones


@dataclass(frozen=True)
class Side:
    """Records to align: their names (see :mod:`kg_build.align.names`) and external ids."""

    names: pl.DataFrame  # id, name, norm, core, year, kind, primary
    ids: pl.DataFrame  # id, id_name, value

    def only(self, ids: pl.Series | list[str]) -> Side:
        keep = pl.col("id").is_in(pl.Series(ids, dtype=pl.String).implode())
        return Side(self.names.filter(keep), self.ids.filter(keep))

    def without(self, ids: list[str]) -> Side:
        drop = pl.col("id").is_in(pl.Series(ids, dtype=pl.String).implode())
        return Side(self.names.filter(~drop), self.ids.filter(~drop))


class Matcher(Protocol):
    method: str

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        """Candidate pairs (``PAIRS``), scores in [0, 1]; pairs below the matcher's cutoff left out."""
        ...


def year_factor(item_year: pl.Expr, entity_year: pl.Expr, tolerance: int) -> pl.Expr:
    """1 for the same year, 0.97 within ``tolerance`` (release vs publication), 0.92 when a year is
    unknown, null (no match) when the years are further apart."""
    gap = (item_year.cast(pl.Int32) - entity_year.cast(pl.Int32)).abs()
    return (
        pl.when(gap.is_null()).then(NO_YEAR)
        .when(gap == 0).then(SAME_YEAR)
        .when(gap <= tolerance).then(NEAR_YEAR)
        .otherwise(None)
    )


def name_factor(item_primary: pl.Expr, entity_primary: pl.Expr) -> pl.Expr:
    return pl.when(item_primary & entity_primary).then(1.0).otherwise(ALT_NAME)


def scored_pairs(
    left: pl.DataFrame, right: pl.DataFrame, i: np.ndarray, j: np.ndarray, similarity: np.ndarray,
    *, year_tolerance: int, cutoff: float = 0.0,
) -> pl.DataFrame:
    """Pairs (``left[i]``, ``right[j]``) of name tables scored as similarity x year x name factors.

    Names with different numbers are no pair, however similar ("Basic Instinct" / "Basic Instinct 2",
    "Terminator 2" / "The Terminator"): a sequel is another entity.
    """
    gap = np.abs(left["year"].to_numpy().astype(np.float64)[i] - right["year"].to_numpy().astype(np.float64)[j])
    years = np.where(np.isnan(gap), NO_YEAR,
                     np.where(gap == 0, SAME_YEAR, np.where(gap <= year_tolerance, NEAR_YEAR, 0.0)))
    both_primary = left["primary"].to_numpy()[i] & right["primary"].to_numpy()[j]
    score = similarity * years * np.where(both_primary, 1.0, ALT_NAME)
    same_numbers = left["numbers"].to_numpy()[i] == right["numbers"].to_numpy()[j]
    keep = (years > 0) & (score >= cutoff) & same_numbers
    return pl.DataFrame({
        "item_id": left["id"].to_numpy()[i][keep],
        "entity_iri": right["id"].to_numpy()[j][keep],
        "score": score[keep].astype(np.float32),
        "item_name": left["name"].to_numpy()[i][keep],
        "entity_name": right["name"].to_numpy()[j][keep],
    }, schema=PAIRS)


def best_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """The best-scoring name pair per (item, entity)."""
    if pairs.is_empty():
        return empty_pairs()
    return (
        pairs.sort(["item_id", "entity_iri", "score", "item_name", "entity_name"],
                   descending=[False, False, True, False, False])
        .unique(subset=["item_id", "entity_iri"], keep="first", maintain_order=True)
        .select(list(PAIRS))
        .cast(PAIRS)  # type: ignore[arg-type]
    )


def empty_pairs() -> pl.DataFrame:
    return pl.DataFrame(schema=PAIRS)
