"""Step ``validate``: the Great Expectations gate between ``build`` and ``publish``.

Runs the KG suites (:mod:`kg_build.validate`) on the run date's version, with row counts compared
to the published version (the drift band). The results are stored beside the partition:
``validation/results.json`` (every check, with GX's own results) and ``validation/report.md``,
and the manifest's ``extra.validation`` records the summary and the hashes of the tables that were
checked, which ``publish`` requires to match. A failed suite raises :class:`ValidationFailed`
naming each failed check, so the publish does not run and ``_CURRENT`` stays where it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from kg_build.validate import DriftBand, validate_kg
from pipeline import kg_store
from pipeline.errors import PermanentError
from pipeline.lake import Lake
from pipeline.settings import Settings

log = logging.getLogger(__name__)
RESULTS = "validation/results.json"
REPORT = "validation/report.md"


class ValidationFailed(RuntimeError, PermanentError):
    """A KG version failed its suites; the message names each failed check and the report."""


@dataclass(frozen=True)
class ValidateResult:
    version: int
    success: bool
    checks: int
    failed: list[str]
    compared_with: int | None
    report_path: str

    def summary(self) -> str:
        against = f"drift vs version {self.compared_with}" if self.compared_with is not None else "no drift check " \
            "(nothing published yet)"
        verdict = "passed" if self.success else f"FAILED {', '.join(self.failed)}"
        return f"validate: KG version {self.version}: {self.checks} checks {verdict} ({against}) -> {self.report_path}"


def validate(settings: Settings, run_date: date) -> ValidateResult:
    """Validate the version built for ``run_date``; raise :class:`ValidationFailed` when a check fails."""
    lake = Lake(settings.lake_root)
    version = kg_store.version_for(lake, run_date, "validate")
    key = kg_store.key(version)
    lake.verify(kg_store.DATASET, key)
    kg = kg_store.read(lake, version)
    current = kg_store.published(lake)
    previous = None
    if current is not None and current != version:
        previous = kg_store.manifest(lake, current).extra.get("counts")
    result = validate_kg(kg, previous=previous,
                         band=DriftBand(max_shrink=settings.kg.max_shrink, max_growth=settings.kg.max_growth))
    manifest = kg_store.manifest(lake, version)
    summary = result.summary() | {
        "compared_with": current if previous is not None else None,
        "tables_sha256": {name: entry.sha256 for name, entry in manifest.files.items()},
    }
    lake.attach(kg_store.DATASET, key, {RESULTS: result.to_json().encode(), REPORT: result.report().encode()},
                extra={"validation": summary})
    out = ValidateResult(
        version=version, success=result.success, checks=summary["checks"],
        failed=[o.name for o in result.failed()], compared_with=summary["compared_with"],
        report_path=f"{lake.partition_path(kg_store.DATASET, key)}/{REPORT}",
    )
    if not result.success:
        for outcome in result.failed():
            log.error("validate: %s (%s) failed: %s", outcome.name, outcome.suite, outcome.examples[:3])
        log.error("validate: the report (%s):\n%s", out.report_path, result.report())
        raise ValidationFailed(f"{out.summary()}\n_CURRENT stays on version {current}; see the report for "
                               "example rows")
    log.info(out.summary())
    return out
