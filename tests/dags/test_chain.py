"""``make run``'s path on the sample: kg_refresh → kg_train → kg_score with ``dag.test()`` against Airflow's SQLite
metadata database and real oxigraph mirrors, ending in the DuckDB warehouse; then a KG that fails validation stops
the chain and leaves the previous KG current; then a re-run of the first night changes nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.dags.conftest import local, pipeline_env

NIGHT = "2026-10-01"
BAD_NIGHT = "2026-10-02"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("chain")
    env = pipeline_env(home)
    return home, env, local("run", "--date", NIGHT, env=env)


def _warehouse(home: Path):
    from pipeline.warehouse import Warehouse

    return Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}")


def _airflow_db(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        return db.execute(sql).fetchall()


def test_the_chain_ends_with_checked_recommendations_in_the_warehouse(chain):
    home, _, done = chain
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    for line in ("kg_refresh: success", "Asset event queued kg_train (kg)", "kg_train: success",
                 "Asset event queued kg_score (model)", "kg_score: success"):
        assert line in out
    warehouse = _warehouse(home)
    try:
        runs = warehouse.frame("select model, status, row_count, kg_version, model_version from scoring_runs "
                               "where run_date = :d", {"d": NIGHT}).to_dicts()
        users = warehouse.frame("select count(distinct user_id) as n from latest_recommendations")["n"][0]
        violations = warehouse.check()
    finally:
        warehouse.dispose()
    assert runs == [{"model": "kgcn", "status": "succeeded", "row_count": 300 * 20, "kg_version": 1,
                     "model_version": 1}]
    assert users == 300
    assert violations == {}
    # make run prints where the results are and a sample query with a few users' top-5 and explanations
    assert f"warehouse duckdb:///{home / 'warehouse.duckdb'}" in out
    assert "from recommendations r" in out and "Recommended because you watched" in out


def test_each_dag_ran_once_with_its_asset_events_recorded(chain):
    home, _, _ = chain
    runs = _airflow_db(home, "select dag_id, state from dag_run order by id")
    assert runs == [("kg_refresh", "success"), ("kg_train", "success"), ("kg_score", "success")]
    events = _airflow_db(home, "select asset.name, asset_event.extra from asset_event join asset "
                               "on asset.id = asset_event.asset_id order by asset_event.id")
    extras = [(name, json.loads(extra)) for name, extra in events]
    assert extras[:2] == [("kg", {"run_date": NIGHT, "kg_version": 1}),
                          ("model", {"run_date": NIGHT, "kg_version": 1, "models": {"kgcn": 1}})]
    name, extra = extras[2]
    assert (name, extra["run_date"], len(extras)) == ("recommendations", NIGHT, 3)
    assert [(r["model"], r["rows"]) for r in extra["runs"]] == [("kgcn", 6000)]
    assert _airflow_db(home, "select count(*) from asset_dag_run_queue") == [(0,)]


def test_the_run_report_covers_kg_model_and_scoring(chain):
    home, _, done = chain
    page = (home / "lake" / "reports" / f"run_date={NIGHT}" / "report.html").read_text()
    assert "version 1 (published)" in page and "alignment coverage" in page
    assert "kgcn version 1" in page and "<svg" in page and "promoted" in page
    assert "Recommended because you watched" in page
    assert f"file://{home}/lake/reports/run_date={NIGHT}/report.html" in done.stdout  # linked from the task logs


def test_a_kg_that_fails_validation_stops_the_chain_and_keeps_the_previous_kg(chain):
    home, env, first = chain
    assert first.returncode == 0
    # 120 of the 201 sample items: every count shrinks by ~40%, beyond the drift band (kg.max_shrink 20%)
    done = local("run", "--date", BAD_NIGHT, "--conf", '{"item_limit": 120}', env=env)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "kg_refresh: failed" in out and "validate failed" in out and "publish upstream_failed" in out
    assert "kg_refresh did not succeed" in out and "kg_train: " not in out.split("kgrec: the DAG chain")[1]
    assert "validate: the report" in out and "drift" in out  # the failed suite's report is in the task log
    assert (home / "lake" / "kg" / "_CURRENT").read_text().strip() == "version=1"
    assert _airflow_db(home, "select state from dag_run where dag_id = 'kg_refresh' order by id") == [
        ("success",), ("failed",)]
    assert _airflow_db(home, "select count(*) from dag_run where dag_id != 'kg_refresh'") == [(2,)]
    assert _airflow_db(home, "select count(*) from asset_event") == [(3,)]  # no new kg event


def test_rerunning_a_night_finds_nothing_new_and_duplicates_nothing(chain):
    home, env, first = chain
    assert first.returncode == 0
    versions = sorted(p.name for p in (home / "lake" / "kg").glob("version=*"))
    done = local("run", "--date", NIGHT, env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "emitted no Asset event (nothing new since the last run): chain ends" in done.stdout
    assert sorted(p.name for p in (home / "lake" / "kg").glob("version=*")) == versions
    warehouse = _warehouse(home)
    try:
        rows = warehouse.frame("select count(*) as n, count(distinct run_id) as runs from recommendations "
                               "where run_date = :d", {"d": NIGHT}).to_dicts()
        assert warehouse.check() == {}
    finally:
        warehouse.dispose()
    assert rows == [{"n": 6000, "runs": 1}]
