"""Step functions: ``step(settings, run_date) -> result``, called by the CLI, the tests and Airflow.

``STEPS`` lists the KG steps in pipeline order; ``kgrec run`` runs them all. Each step rewrites only its own
run-date partitions, so re-running a date is safe. ``STEPS`` is built on first use: importing one step (``train``,
``score`` on a GPU worker) does not import the others' dependencies (SPARQL, rapidfuzz, Great Expectations).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.settings import Settings

Step = Callable[["Settings", date], Any]


def __getattr__(name: str) -> dict[str, Step]:
    if name != "STEPS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pipeline.steps.align import align
    from pipeline.steps.build import build
    from pipeline.steps.extract import extract, extract_facts
    from pipeline.steps.ingest import ingest
    from pipeline.steps.publish import publish
    from pipeline.steps.validate import validate

    return {
        "ingest": ingest,
        "extract": extract,
        "align": align,
        "extract_facts": extract_facts,
        "build": build,
        "validate": validate,
        "publish": publish,
    }
