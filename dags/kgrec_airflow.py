"""What the three kgrec DAGs share: Assets, default task arguments, and the settings and run date of a task.

Not a DAG file (``.airflowignore`` lists it); the DAG files import it at parse time, so it imports nothing heavy
at module level. Settings come from the profile (``KGREC_PROFILE``, default ``sample``), ``KGREC_*`` variables,
then the Airflow connections ``kgrec_warehouse`` and ``kgrec_sparql_<source>`` (see ``pipeline/connections.py``),
then the run's params, highest last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule

KG = Asset("kg", uri="kgrec://lake/kg", group="kgrec")
MODEL = Asset("model", uri="kgrec://models", group="kgrec")
RECOMMENDATIONS = Asset("recommendations", uri="kgrec://warehouse/recommendations", group="kgrec")

# Failures a retry cannot fix (pipeline.errors.PermanentError: a KG that failed its suites, bad settings or params, a
# model that cannot train or be scored) fail the task at once. Everything else (an endpoint or warehouse that is down, a
# killed worker) is retried with exponential backoff.
NO_RETRY = ExceptionRetryPolicy(rules=[RetryRule(exception="pipeline.errors.PermanentError", action=RetryAction.FAIL,
                                                 reason="retrying cannot fix it: see the error")])
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "kgrec",
    "retry_policy": NO_RETRY,
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}
TAGS = ["kgrec"]
# build, validate and publish share the lake's vocabularies, version numbers and _CURRENT: one at a time across
# runs (a backfill starts up to --max-active-runs dates at once). `airflow pools set kgrec_kg 1 ...` creates it.
KG_POOL = "kgrec_kg"
# Read when the files are parsed, from the variables of the settings keys train.queue and airflow.refresh_cron:
# the training tasks' queue (the GPU Celery worker listens on `gpu`) and the nightly schedule (UTC).
TRAIN_QUEUE = os.environ.get("KGREC_TRAIN__QUEUE") or "default"
NIGHTLY = os.environ.get("KGREC_AIRFLOW__REFRESH_CRON") or "0 2 * * *"


def settings(params: Mapping[str, Any] | None = None):  # noqa: ANN201 - pipeline.settings.Settings
    """Settings for a task: profile < KGREC_* < Airflow connections < the run's params."""
    from pipeline import connections
    from pipeline.settings import ConfigError, deep_merge, load_settings

    params = dict(params or {})
    base = load_settings()
    found = connections.overrides(_connection(connections.WAREHOUSE),
                                  {name: conn for name in base.sources
                                   if (conn := _connection(connections.SPARQL_PREFIX + name)) is not None})
    merged = deep_merge(found, _param_overrides(params))
    out = load_settings(overrides=merged) if merged else base
    wanted = params.get("sources") or []
    unknown = sorted(set(wanted) - set(out.sources))
    if unknown:
        raise ConfigError(f"params.sources: {', '.join(unknown)} not configured (the profile has "
                          f"{', '.join(out.sources)})")
    if wanted:
        out = out.model_copy(update={"sources": {n: s for n, s in out.sources.items() if n in wanted}})
    return out


def run_date(context: Mapping[str, Any]) -> date:
    """The partition date of a run: a triggering asset event's ``run_date`` (the KG's night), else the logical
    date, else the date the run was due (manual runs without a logical date)."""
    dates = [event.extra["run_date"] for events in (context.get("triggering_asset_events") or {}).values()
             for event in events if (event.extra or {}).get("run_date")]
    if dates:
        return date.fromisoformat(max(dates))
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.date()


def triggering_extra(context: Mapping[str, Any], key: str) -> list[Any]:
    """``extra[key]`` of every triggering asset event (e.g. the models kg_train promoted)."""
    return [event.extra[key] for events in (context.get("triggering_asset_events") or {}).values()
            for event in events if key in (event.extra or {})]


def _connection(conn_id: str):  # noqa: ANN202 - pipeline.connections.ConnectionFields | None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipeline.connections import ConnectionFields

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    return ConnectionFields(conn_id, conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema,
                            conn.extra_dejson)


def _param_overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if params.get("item_limit") is not None:
        out["catalog"] = {"limit": params["item_limit"]}
    train = {key: params[name] for name, key in (("models", "models"), ("epochs", "epochs")) if params.get(name)}
    if train:
        out["train"] = train
    return out
