"""The DAG files as Airflow's DAG processor sees them: no import errors or deprecation warnings, the expected tasks,
dependencies, schedules, Assets, retries, queues, pools and params schemas, and nothing heavy imported at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from copy import deepcopy

import pytest

from tests.dags.conftest import DAGS

CHAIN = ["kg_refresh", "kg_train", "kg_score"]


def test_the_dag_files_import_without_errors_or_deprecation_warnings(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == sorted(CHAIN)
    ours = [w for w in dagbag.caught_warnings if str(DAGS) in str(w.filename)
            or "deprecat" in str(w.message).lower() and "import" in str(w.message).lower()]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


@pytest.mark.parametrize("dag_id", CHAIN)
def test_every_dag_is_documented_tagged_and_retried_with_a_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert dag.tags == {"kgrec"} or set(dag.tags) == {"kgrec"}
    assert dag.catchup is False and dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.retries == 2, task.task_id
        assert task.retry_exponential_backoff == 2.0
        rule = task.retry_policy.rules[0]
        assert rule.action.value == "fail"
        assert rule.exception_path == "pipeline.errors.PermanentError"


def test_the_retry_policy_fails_permanent_errors_at_once_and_retries_the_rest(dagbag):
    from kg_build.sparql import SparqlError
    from pipeline.settings import ConfigError
    from pipeline.steps.publish import PublishRefused
    from pipeline.steps.validate import ValidationFailed
    from pipeline.warehouse import WarehouseError

    rule = dagbag.dags["kg_refresh"].task_dict["validate"].retry_policy.rules[0]
    assert all(rule.matches(exc("x")) for exc in (ValidationFailed, PublishRefused, ConfigError))
    assert not any(rule.matches(exc("x")) for exc in (SparqlError, WarehouseError, OSError))


def _edges(dag) -> set[tuple[str, str]]:
    return {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}


def test_kg_refresh_runs_nightly_and_publishes_the_kg_asset(dagbag):
    dag = dagbag.dags["kg_refresh"]
    assert dag.schedule == "0 2 * * *"
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert set(dag.task_dict) == {"ingest", "sources", "extract", "align", "extract_facts", "build", "validate",
                                  "publish", "report"}
    assert _edges(dag) == {
        ("sources", "extract"), ("sources", "extract_facts"), ("ingest", "extract"), ("extract", "align"),
        ("align", "extract_facts"), ("extract_facts", "build"), ("build", "validate"), ("validate", "publish"),
        ("publish", "report"),
    }
    assert [a.name for a in dag.task_dict["publish"].outlets] == ["kg"]
    assert all(not dag.task_dict[t].outlets for t in dag.task_dict if t != "publish")
    assert {t: dag.task_dict[t].pool for t in ("build", "validate", "publish")} == dict.fromkeys(
        ("build", "validate", "publish"), "kgrec_kg")
    assert dag.task_dict["report"].is_teardown  # runs after a failure too, without hiding it from the run state


def test_kg_train_is_scheduled_on_kg_and_emits_model(dagbag):
    dag = dagbag.dags["kg_train"]
    assert [a.name for a in dag.schedule] == ["kg"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert _edges(dag) == {("models", "train"), ("train", "promote"), ("promote", "announce"),
                           ("announce", "report")}
    assert [a.name for a in dag.task_dict["announce"].outlets] == ["model"]
    assert dag.task_dict["train"].queue == "default"  # no KGREC_TRAIN__QUEUE here


def test_kg_score_is_scheduled_on_model_and_emits_recommendations(dagbag):
    dag = dagbag.dags["kg_score"]
    assert [a.name for a in dag.schedule] == ["model"]
    assert _edges(dag) == {("models", "score"), ("score", "check"), ("check", "report")}
    assert [a.name for a in dag.task_dict["check"].outlets] == ["recommendations"]


@pytest.mark.parametrize(("dag_id", "conf"), [
    ("kg_refresh", {"sources": ["wikidata"], "item_limit": 50, "force_publish": True}),
    ("kg_refresh", {}),
    ("kg_train", {"models": ["kgcn", "bprmf"], "epochs": 3}),
    ("kg_score", {"models": ["kgcn"], "k": 10}),
])
def test_params_accept_valid_manual_runs(dagbag, dag_id, conf):
    params = deepcopy(dagbag.dags[dag_id].params)
    params.update(conf)
    assert params.validate() == {**params.dump(), **conf}


@pytest.mark.parametrize(("dag_id", "conf"), [
    ("kg_refresh", {"item_limit": 0}),
    ("kg_refresh", {"item_limit": "ten"}),
    ("kg_refresh", {"sources": "wikidata"}),
    ("kg_refresh", {"sources": ["wikidata", "wikidata"]}),
    ("kg_refresh", {"force_publish": "yes"}),
    ("kg_train", {"epochs": 0}),
    ("kg_train", {"models": [1]}),
    ("kg_score", {"k": 5000}),
])
def test_params_reject_invalid_manual_runs(dagbag, dag_id, conf):
    from airflow.sdk.exceptions import ParamValidationError

    params = deepcopy(dagbag.dags[dag_id].params)
    with pytest.raises(ParamValidationError):
        params.update(conf)
        params.validate()


def test_force_publish_is_off_by_default(dagbag):
    assert dagbag.dags["kg_refresh"].params["force_publish"] is False


def test_parsing_imports_nothing_heavy_and_reads_queue_and_schedule_from_the_environment(airflow_home):
    """What the DAG processor pays per parse: Airflow and the DAG files, not torch, polars or the pipeline."""
    script = f"""
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder=Path({str(DAGS)!r}), bundle_path=Path({str(DAGS)!r}), bundle_name="dags-folder")
heavy = ["torch", "polars", "pyarrow", "duckdb", "great_expectations", "sentence_transformers",
         "pipeline.settings", "pipeline.steps", "kg_build", "models"]
print(json.dumps({{"errors": list(bag.import_errors), "loaded": [m for m in heavy if m in sys.modules],
                  "queue": bag.dags["kg_train"].task_dict["train"].queue,
                  "schedule": bag.dags["kg_refresh"].schedule}}))
"""
    env = {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin",
           "KGREC_TRAIN__QUEUE": "gpu", "KGREC_AIRFLOW__REFRESH_CRON": "30 3 * * *"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"errors": [], "loaded": [], "queue": "gpu", "schedule": "30 3 * * *"}


def test_the_schedule_and_queue_variables_are_settings_keys():
    """KGREC_* variables are settings keys: the two the DAG files read must validate (and a bad cron fails)."""
    from pipeline.settings import ConfigError, load_settings

    env = {"KGREC_TRAIN__QUEUE": "gpu", "KGREC_AIRFLOW__REFRESH_CRON": "0 4 * * 1"}
    settings = load_settings("sample", environ=env)
    assert (settings.train.queue, settings.airflow.refresh_cron) == ("gpu", "0 4 * * 1")
    with pytest.raises(ConfigError, match="airflow.refresh_cron"):
        load_settings("sample", environ={"KGREC_AIRFLOW__REFRESH_CRON": "nightly"})


def test_a_task_reads_connections_over_the_profile_and_params_over_both(airflow_home):
    """kgrec_airflow.settings: AIRFLOW_CONN_* connections override the profile, the run's params override all."""
    script = f"""
import json, sys
sys.path.insert(0, {str(DAGS)!r})
import kgrec_airflow
from pipeline.settings import ConfigError
s = kgrec_airflow.settings({{"item_limit": 7, "sources": ["wikidata"], "models": ["bprmf"], "epochs": 2}})
try:
    kgrec_airflow.settings({{"sources": ["freebase"]}})
    unknown = None
except ConfigError as exc:
    unknown = str(exc)
print(json.dumps({{"url": s.warehouse.url, "safe": s.redacted()["warehouse"]["url"],
                  "endpoint": s.sources["wikidata"].endpoint, "sources": list(s.sources), "limit": s.catalog.limit,
                  "models": s.train.models, "epochs": s.train.epochs, "unknown": unknown}}))
"""
    env = {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": "/usr/bin:/bin",
           "AIRFLOW_CONN_KGREC_WAREHOUSE": "postgresql://kgrec:s%40cret@db.example:5432/kgrec",
           "AIRFLOW_CONN_KGREC_SPARQL_WIKIDATA": '{"conn_type": "http", "host": "https://query.wikidata.org/sparql"}',
           "KGREC_CONTACT": "ops@example.org", "KGREC_WAREHOUSE__URL": "duckdb:///elsewhere.duckdb"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {
        "url": "postgresql+psycopg://kgrec:s%40cret@db.example:5432/kgrec",
        "safe": "postgresql+psycopg://kgrec:***@db.example:5432/kgrec",
        "endpoint": "https://query.wikidata.org/sparql", "sources": ["wikidata"], "limit": 7, "models": ["bprmf"],
        "epochs": 2, "unknown": "params.sources: freebase not configured (the profile has wikidata, dbpedia)",
    }
