"""The gate before publishing a KG: Great Expectations suites over its tables, as named checks.

    result = validate_kg(kg, previous=current_manifest_counts)
    if not result.success:
        raise SystemExit(result.report())

Suites, each a list of checks with stable snake_case names (other modules assert on them; see
:mod:`kg_build.validation.checks`): ``entities``, ``relations``, ``triples``, ``item_entity``,
``users``, ``interactions`` (interactions and splits), ``integrity`` (foreign keys: no dangling
ids, items are item entities, inverses exist, splits match interactions), ``leakage`` (no held-out
pair in train, cold items unseen) and, given the previous published version's ``KG.counts()``,
``drift`` (row counts within a :class:`DriftBand`). The first publish has no previous counts, so
no drift suite; the result's notes say so.
"""

from __future__ import annotations

import time

from kg_build.tables import KG
from kg_build.validation import checks, runner
from kg_build.validation.drift import DRIFT_COUNTS, DriftBand
from kg_build.validation.result import Outcome, SuiteResult, ValidationResult

__all__ = ["DriftBand", "Outcome", "SuiteResult", "ValidationResult", "validate_kg"]


def validate_kg(
    kg: KG,
    *,
    previous: dict[str, int] | None = None,
    band: DriftBand = DriftBand(),  # noqa: B008 (frozen: one shared default is safe)
    examples: int = 5,
) -> ValidationResult:
    """Run every suite on ``kg``; ``previous`` is the last published ``KG.counts()`` (None: first publish).

    ``examples`` caps the offending rows kept per failed check.
    """
    if examples < 0:
        raise ValueError(f"examples must be >= 0, got {examples}")
    start = time.perf_counter()
    notes = []
    if previous is None:
        notes.append("drift: not checked, no previous published KG (first publish)")
    else:
        lacking = [count for count in DRIFT_COUNTS if count not in previous]
        if lacking:
            notes.append(f"drift: the previous counts lack {lacking}; those counts are not checked")
    suites = runner.run(checks.plan(kg, previous, band), kg.tables(), examples=examples)
    return ValidationResult(success=all(s.success for s in suites), suites=suites,
                            seconds=time.perf_counter() - start, notes=notes)
