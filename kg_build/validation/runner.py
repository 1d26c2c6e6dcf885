"""Evaluates check specs with Great Expectations 1.x: one ephemeral context per run, quiet.

GX has no polars backend, so every frame goes in as ``frame.to_pandas()``: one dataframe asset and
one whole-dataframe batch definition per frame, its batch built once and shared by the suites that
check it. Each suite becomes one GX ``ExpectationSuite`` per frame it touches, validated with
``batch.validate(...)`` in SUMMARY format; a check finds its result by its name in the
expectation's ``meta``. Example rows come from the polars frame at the indices GX reports (column
checks), from the head of the offending-rows frame (row-count checks) or from the check's detail
(drift).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl
import polars.selectors as cs

from kg_build.validation.result import Outcome, SuiteResult
from kg_build.validation.spec import Check, Suite

GX_LOGGER = "great_expectations"


@contextmanager
def _quiet() -> Iterator[None]:
    """GX's INFO logs and its import-time DeprecationWarnings off, for this run only."""
    logger = logging.getLogger(GX_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"great_expectations(\.|$)")
            yield
    finally:
        logger.setLevel(level)


def run(suites: list[Suite], tables: dict[str, pl.DataFrame], *, examples: int) -> list[SuiteResult]:
    """Evaluate ``suites`` on ``tables`` plus each suite's derived frames."""
    with _quiet():
        import great_expectations as gx
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        source = _pandas_source()
        frames = dict(tables)
        for suite in suites:
            frames |= suite.frames
        batches: dict[str, Any] = {}

        def batch(name: str) -> Any:
            if name not in batches:
                definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
                batches[name] = definition.get_batch(batch_parameters={"dataframe": _pandas(frames[name])})
            return batches[name]

        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": examples}
        results = []
        for suite in suites:
            outcomes: dict[str, Outcome] = {}
            raw = []
            for frame, checks in _by_frame(suite.checks).items():
                gx_suite = gx.ExpectationSuite(name=f"{suite.name}.{frame}")
                for check in checks:
                    gx_suite.add_expectation(ExpectationConfiguration(
                        type=check.expectation, kwargs=check.kwargs, meta={"check": check.name}).to_domain_obj())
                validation = batch(frame).validate(gx_suite, result_format=result_format)
                raw.append(validation.to_json_dict())
                named = {c.name: c for c in checks}
                for result in validation.results:
                    check = named[result.expectation_config.meta["check"]]
                    outcomes[check.name] = _outcome(check, result, frames[frame], examples)
            ordered = [outcomes[c.name] for c in suite.checks]
            results.append(SuiteResult(suite.name, all(o.success for o in ordered), ordered, raw))
        return results


def _pandas_source() -> Any:
    """A pandas data source in a fresh ephemeral context: in memory, no docs site, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config).data_sources.add_pandas("kg")


def _pandas(frame: pl.DataFrame) -> Any:
    """``frame`` for GX, integers widened to int64: GX's pandas range check is vectorised only for
    int64 / float64 columns and calls Python per value otherwise (~10x slower on int32 ids)."""
    return frame.with_columns(cs.integer().cast(pl.Int64)).to_pandas()


def _by_frame(checks: list[Check]) -> dict[str, list[Check]]:
    groups: dict[str, list[Check]] = {}
    for check in checks:
        groups.setdefault(check.frame, []).append(check)
    return groups


def _outcome(check: Check, result: Any, frame: pl.DataFrame, examples: int) -> Outcome:
    found = dict(result.result or {})
    error = _error(result.exception_info)
    success = bool(result.success) and error is None
    observed, count = found.get("observed_value"), found.get("unexpected_count")
    rows: list[dict[str, Any]] = []
    if check.detail is not None:  # drift: the counts say more than GX's row count
        observed = check.detail
        rows = [] if success else [{"count": check.name.removeprefix("drift_"), **check.detail, **check.kwargs}]
    elif check.expectation == "expect_table_row_count_to_equal":  # the frame holds the offending rows
        count = observed
        rows = [] if success else _rows(frame.head(examples))
    elif not success:
        indices = [i for i in found.get("partial_unexpected_index_list") or [] if isinstance(i, int)]
        rows = _rows(frame[indices[:examples]]) if indices else []
    return Outcome(name=check.name, suite=check.suite, expectation=check.expectation, kwargs=check.kwargs,
                   success=success, observed=observed, unexpected_count=count, examples=rows[:examples],
                   frame=check.frame, expects=check.expects, error=error)


def _error(info: Any) -> str | None:
    """GX's exception message, from either shape of ``exception_info`` (flat, or per metric)."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    messages = [str(v.get("exception_message")) for v in info.values() if isinstance(v, dict)
                and v.get("raised_exception")]
    return "; ".join(messages) or None


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-able rows: temporal columns as ISO strings."""
    temporal = [name for name, dtype in frame.schema.items() if dtype.is_temporal()]
    return frame.with_columns(pl.col(temporal).cast(pl.String)).to_dicts() if temporal else frame.to_dicts()
