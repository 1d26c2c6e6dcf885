"""Check specs: one named check is a GX expectation type and kwargs on a named frame.

Nothing here imports GX; :mod:`kg_build.validation.runner` evaluates the specs. A check either runs
on a KG table (column checks) or on a frame of offending rows that polars computed for what GX has
no expectation for (foreign keys, leakage), which GX then expects to be empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class Check:
    """One named check: GX's ``expectation`` with ``kwargs`` on the frame ``frame``."""

    name: str
    suite: str
    frame: str
    expectation: str  # GX's snake_case expectation type
    kwargs: dict[str, Any]
    expects: str  # the rule in words, for the report
    detail: dict[str, Any] | None = None  # known better here than GX knows it (drift counts)


@dataclass(frozen=True)
class Suite:
    name: str
    checks: list[Check]
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # derived frames; tables come from the KG


@dataclass(frozen=True)
class On:
    """Builds checks of one suite on one frame."""

    suite: str
    frame: str

    def check(self, name: str, expectation: str, expects: str, **kwargs: Any) -> Check:
        return Check(name, self.suite, self.frame, expectation, kwargs, expects)

    def not_null(self, name: str, column: str) -> Check:
        return self.check(name, "expect_column_values_to_not_be_null", f"{self.frame}.{column} is never null",
                          column=column)

    def unique(self, name: str, column: str) -> Check:
        return self.check(name, "expect_column_values_to_be_unique", f"{self.frame}.{column} is unique",
                          column=column)

    def unique_rows(self, name: str, columns: list[str]) -> Check:
        return self.check(name, "expect_compound_columns_to_be_unique",
                          f"({', '.join(columns)}) is unique in {self.frame}", column_list=columns)

    def in_set(self, name: str, column: str, values: list[Any], what: str) -> Check:
        return self.check(name, "expect_column_values_to_be_in_set", f"{self.frame}.{column} is {what}",
                          column=column, value_set=values)

    def below(self, name: str, column: str, bound: int, what: str) -> Check:
        """``0 <= column < bound``: strict, so an empty range (bound 0) stays valid for GX."""
        return self.check(name, "expect_column_values_to_be_between",
                          f"0 <= {self.frame}.{column} < {bound:,} ({what})",
                          column=column, min_value=0, max_value=bound, strict_max=True)


def offenders(suite: str, name: str, rows: pl.DataFrame, expects: str) -> tuple[Check, pl.DataFrame]:
    """A check that the frame of offending ``rows`` (registered under the check's name) is empty."""
    return Check(name, suite, name, "expect_table_row_count_to_equal", {"value": 0}, expects), rows


def suite(name: str, *items: Check | tuple[Check, pl.DataFrame]) -> Suite:
    checks, frames = [], {}
    for item in items:
        check, frame = item if isinstance(item, tuple) else (item, None)
        checks.append(check)
        if frame is not None:
            frames[check.frame] = frame
    return Suite(name, checks, frames)
