"""Kinds of failure that callers treat alike, importable without the pipeline's dependencies.

The DAG files name :class:`PermanentError` in their retry policy when parsed, so this module imports nothing.
"""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad settings or params, a KG that failed its suites, a model that does
    not fit its KG): Airflow fails the task at once instead of retrying it."""
