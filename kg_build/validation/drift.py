"""The drift suite: row counts against the previous published KG, within a :class:`DriftBand`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from kg_build.tables import KG
from kg_build.validation.spec import Check, Suite

# drift_<count>: the KG.counts() key -> the frame whose row count it is
DRIFT_COUNTS = {"triples": "triples", "entities": "active_entities", "items": "item_entity", "users": "users",
                "interactions": "interactions"}


@dataclass(frozen=True)
class DriftBand:
    """How far row counts may move against the previous published KG.

    ``max_shrink=0.2``: a count may fall by at most 20%; ``max_growth=1.0``: it may at most double
    (None: unbounded).
    """

    max_shrink: float = 0.2
    max_growth: float | None = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_shrink <= 1 or (self.max_growth is not None and self.max_growth < 0):
            raise ValueError(f"a drift band needs 0 <= max_shrink <= 1 and max_growth >= 0 or None, got {self}")

    def bounds(self, previous: int) -> tuple[int, int | None]:
        """The allowed ``[low, high]`` row counts; a previous count of 0 sets no upper bound."""
        low = max(0, math.ceil(previous * (1 - self.max_shrink) - 1e-9))
        if self.max_growth is None or previous == 0:
            return low, None
        return low, math.floor(previous * (1 + self.max_growth) + 1e-9)


def drift(kg: KG, previous: dict[str, int], band: DriftBand) -> Suite:
    """``drift_<count>`` for the counts that ``previous`` has; row counts of their frames within the band."""
    now = kg.counts()
    growth = "" if band.max_growth is None else f", growth <= {band.max_growth:.0%}"
    checks = []
    for count, frame in DRIFT_COUNTS.items():
        if count not in previous:
            continue
        before = int(previous[count])
        low, high = band.bounds(before)
        detail = {"previous": before, "now": now[count], "change": change(before, now[count])}
        expects = (f"{count} within [{low:,}, {'unbounded' if high is None else f'{high:,}'}] of the previous "
                   f"{before:,} (shrink <= {band.max_shrink:.0%}{growth})")
        checks.append(Check(f"drift_{count}", "drift", frame, "expect_table_row_count_to_be_between",
                            {"min_value": low, "max_value": high}, expects, detail))
    active = kg.entities.filter(pl.col("retired").not_()).select("entity_id")
    return Suite("drift", checks, {"active_entities": active})


def change(previous: int, now: int) -> str:
    """``-50.0%``, ``+12.5%``; ``new`` from nothing."""
    if previous == 0:
        return "+0.0%" if now == 0 else "new"
    return f"{(now - previous) / previous:+.1%}"
