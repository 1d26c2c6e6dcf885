"""Step functions: ``step(settings, run_date) -> result``, called by the CLI, the tests and Airflow.

``STEPS`` lists them in pipeline order; ``kgrec run`` runs them all. Each step rewrites only its
own run-date partitions, so re-running a date is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from pipeline.settings import Settings
from pipeline.steps.align import align
from pipeline.steps.build import build
from pipeline.steps.extract import extract, extract_facts
from pipeline.steps.ingest import ingest
from pipeline.steps.publish import publish
from pipeline.steps.validate import validate

Step = Callable[[Settings, date], Any]

STEPS: dict[str, Step] = {
    "ingest": ingest,
    "extract": extract,
    "align": align,
    "extract_facts": extract_facts,
    "build": build,
    "validate": validate,
    "publish": publish,
}
