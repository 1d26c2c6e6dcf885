"""The warehouse on a real DuckDB file and a real PostgreSQL server: whole-partition swaps, re-runs, retention,
partial runs, failures and killed writers that leave the previous run, readers that only ever see complete runs,
and the check queries of sql/checks after every run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.settings import PROJECT_ROOT
from pipeline.warehouse import ChecksFailed, Warehouse, WarehouseError, statements
from tests.conftest import free_port
from tests.pipeline.warehouse_rows import synthetic_run

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)
COMPLETE = ("select latest_recommendations.model, latest_recommendations.run_id, count(*) as found, "
            "max(scoring_runs.row_count) as expected from latest_recommendations join scoring_runs "
            "on latest_recommendations.run_id = scoring_runs.run_id group by latest_recommendations.model, "
            "latest_recommendations.run_id")


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def wh(url: str):
    warehouse = Warehouse(url)
    warehouse.ensure_schema()
    warehouse.ensure_schema()  # idempotent
    yield warehouse
    warehouse.dispose()


def partition(wh: Warehouse, run_date: date, model: str = "bprmf") -> dict[str, int]:
    """{run_id: rows} of one partition."""
    frame = wh.frame("select run_id, count(*) as n from recommendations where run_date = :d and model = :m "
                     "group by run_id", {"d": run_date, "m": model})
    return dict(frame.iter_rows())


def status(wh: Warehouse, run_id: str) -> str:
    return wh.frame("select status from scoring_runs where run_id = :r", {"r": run_id}).item()


def test_a_run_lands_whole_and_a_rerun_of_its_date_replaces_it(wh: Warehouse) -> None:
    first = synthetic_run(D1, users=50, seed=1)
    written = wh.replace_partition(first)
    assert (written.rows, written.explanations, written.replaced) == (1000, 50, 0)
    assert partition(wh, D1) == {first.run_id: 1000} and wh.check() == {}

    again = synthetic_run(D1, users=60, seed=2)
    assert wh.replace_partition(again).replaced == 1000
    assert partition(wh, D1) == {again.run_id: 1200}  # exactly one copy: the re-run's
    assert (status(wh, first.run_id), status(wh, again.run_id)) == ("superseded", "succeeded")
    assert wh.frame("select count(*) from recommendation_explanations").item() == 60

    nightly = synthetic_run(D2, users=40, seed=3)
    wh.replace_partition(nightly)
    assert dict(wh.frame("select run_id, count(*) from latest_recommendations group by run_id").iter_rows()) == \
        {nightly.run_id: 800}
    enriched = wh.frame("select * from recommendations_enriched where rank = 1 order by user_id")
    assert enriched.height == 40 and enriched["title"].str.starts_with("Item ").all()
    assert enriched["explanation"].to_list()[0] == 'Recommended because you watched *A, "B"*'
    assert wh.check() == {}


def test_a_partition_larger_than_a_duckdb_row_group_lands_whole(wh: Warehouse) -> None:
    run = synthetic_run(D1, users=7000, seed=4)  # 140,000 rows: more than DuckDB's 122,880-row group
    assert wh.replace_partition(run).rows == 140_000
    assert partition(wh, D1) == {run.run_id: 140_000} and wh.check() == {}


@pytest.mark.parametrize("breakage", ["null item", "duplicate rank", "missing column"])
def test_a_failing_run_rolls_back_and_leaves_the_previous_one(wh: Warehouse, breakage: str) -> None:
    before = synthetic_run(D1, users=30, seed=5)
    wh.replace_partition(before)
    bad = synthetic_run(D1, users=30, seed=6)
    recs = bad.recommendations
    if breakage == "null item":
        items = recs["item_id"].to_pylist()
        items[len(items) // 2] = None
        recs = recs.set_column(1, "item_id", pa.array(items, pa.string()))
    elif breakage == "duplicate rank":
        ranks = recs["rank"].to_pylist()
        ranks[1] = 1
        recs = recs.set_column(2, "rank", pa.array(ranks, pa.int16()))
    else:
        recs = recs.drop_columns(["score"])
    bad = type(bad)(**{**bad.__dict__, "recommendations": recs})
    # a duplicate rank: PostgreSQL's unique index refuses it, DuckDB's checks do
    expected = {"null item": "item_id", "duplicate rank": "recommendations_unique_rank|recommendations_key",
                "missing column": r"missing columns \['score'\]"}[breakage]
    with pytest.raises(WarehouseError, match=expected) as caught:
        wh.replace_partition(bad)
    if breakage == "duplicate rank" and wh.dialect == "duckdb":
        assert isinstance(caught.value, ChecksFailed)
        assert {"recommendations_unique_rank", "recommendations_ranks_contiguous"} <= set(caught.value.violations)
    assert partition(wh, D1) == {before.run_id: 600}
    assert wh.frame("select count(*) from scoring_runs where run_id = :r", {"r": bad.run_id}).item() == 0
    assert wh.check() == {}


def test_retention_keeps_n_days_and_refuses_a_backfill_outside_them(wh: Warehouse) -> None:
    days = [D2 - timedelta(days=d) for d in (10, 5, 0)]
    runs = [synthetic_run(day, users=10, seed=i) for i, day in enumerate(days)]
    for run in runs[:2]:
        wh.replace_partition(run, retention_days=7)
    written = wh.replace_partition(runs[2], retention_days=7)
    assert written.cutoff == D2 - timedelta(days=7) and written.expired == 200
    assert wh.frame("select distinct run_date from recommendations order by 1")["run_date"].to_list() == days[1:]
    assert status(wh, runs[0].run_id) == "expired"
    old = synthetic_run(D2 - timedelta(days=30), users=10)
    with pytest.raises(WarehouseError, match="older than the retention window"):
        wh.replace_partition(old, retention_days=7)
    assert wh.check() == {}


def test_a_run_for_some_users_keeps_the_others_lists(wh: Warehouse) -> None:
    full = synthetic_run(D1, users=20, seed=8)
    wh.replace_partition(full)
    some = synthetic_run(D1, user_ids=["u000003", "u000007"], seed=9)
    some = type(some)(**{**some.__dict__, "merge": True})
    written = wh.replace_partition(some)
    assert written.rows == 400 and partition(wh, D1) == {some.run_id: 400}
    mine = wh.frame("select user_id, item_id from recommendations where rank = 1 order by user_id")
    expected_items = dict(zip(some.recommendations["user_id"].to_pylist()[::20],
                              some.recommendations["item_id"].to_pylist()[::20], strict=True))
    others = dict(zip(full.recommendations["user_id"].to_pylist()[::20],
                      full.recommendations["item_id"].to_pylist()[::20], strict=True))
    assert dict(mine.iter_rows()) == {**others, **expected_items}
    assert wh.frame("select count(*) from recommendation_explanations").item() == 20
    assert wh.check() == {}


def test_an_unreachable_warehouse_is_named_without_its_password() -> None:
    wh = Warehouse(f"postgresql+psycopg://kgrec:s3cret@127.0.0.1:{free_port()}/kgrec", connect_timeout_s=2)
    with pytest.raises(WarehouseError, match=r"warehouse postgresql\+psycopg://kgrec:\*\*\*@127\.0\.0\.1") as caught:
        wh.ensure_schema()
    assert "s3cret" not in str(caught.value)


def test_sql_files_split_into_statements() -> None:
    pieces = statements((PROJECT_ROOT / "sql" / "ddl" / "postgresql" / "01_indexes.sql").read_text())
    assert len(pieces) == 3 and all(p.startswith(("--", "create")) for p in pieces)
    for path in (PROJECT_ROOT / "sql" / "checks").glob("*.sql"):
        assert len(statements(path.read_text())) == 1, path


class Reader(threading.Thread):
    """Polls latest_recommendations, recording every snapshot that is not exactly one complete run per model."""

    def __init__(self, wh: Warehouse) -> None:
        super().__init__(daemon=True)
        self.wh, self.stop, self.snapshots, self.bad = wh, threading.Event(), 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            rows = self.wh.frame(COMPLETE).rows()
            self.snapshots += 1
            models = [r[0] for r in rows]
            if len(models) != len(set(models)) or any(found != expected for _, _, found, expected in rows):
                self.bad.append(rows)


def test_a_reader_sees_only_complete_runs_while_runs_are_written_and_fail(wh: Warehouse) -> None:
    wh.replace_partition(synthetic_run(D1, users=2000, seed=10))
    reader = Reader(wh)
    reader.start()
    try:
        for i in range(4):
            run = synthetic_run(D1 if i % 2 else D2, users=3000, seed=20 + i)
            if i == 2:  # this one fails after its rows are in: a duplicate (PostgreSQL's key, DuckDB's checks)
                recs = run.recommendations
                run = type(run)(**{**run.__dict__, "recommendations": pa.concat_tables([recs, recs.slice(0, 1)])})
                with pytest.raises(WarehouseError, match="recommendations_unique_rank|recommendations_key"):
                    wh.replace_partition(run)
            else:
                wh.replace_partition(run)
    finally:
        reader.stop.set()
        reader.join(30)
    assert reader.snapshots > 3 and reader.bad == []
    assert wh.check() == {}


def _writer(url: str, run_date: date, users: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.pipeline.warehouse_rows", url, run_date.isoformat(),
                             str(users)], stdout=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT)


def test_a_writer_killed_mid_write_leaves_the_previous_run_to_readers(postgres) -> None:
    wh = Warehouse(postgres.new_database())
    wh.ensure_schema()
    before = synthetic_run(D1, users=5000, seed=11)
    wh.replace_partition(before)
    reader = Reader(wh)
    reader.start()
    writer = _writer(wh.url, D1, 100_000)  # 2,000,000 rows: seconds of COPY and swap
    try:
        assert writer.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it once its rows are going in
            busy = wh.frame("select count(*) from pg_stat_activity where pid <> pg_backend_pid() and "
                            "state = 'active' and (query like 'copy stg_%' or query like 'insert into %')").item()
            if busy:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the writer never started loading")
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(30) == -signal.SIGKILL
    finally:
        writer.kill()
        time.sleep(0.5)
        reader.stop.set()
        reader.join(30)
    assert reader.snapshots > 0 and reader.bad == []
    assert partition(wh, D1) == {before.run_id: 100_000}
    assert wh.frame("select count(*) from scoring_runs").item() == 1
    assert wh.check() == {}
    again = synthetic_run(D1, users=100, seed=12)  # the killed writer's locks are gone
    wh.replace_partition(again)
    assert partition(wh, D1) == {again.run_id: 2000}
    wh.dispose()


def test_a_duckdb_writer_killed_mid_write_leaves_a_complete_file(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    wh = Warehouse(url)
    wh.ensure_schema()
    before = synthetic_run(D1, users=1000, seed=13)
    wh.replace_partition(before)
    wh.dispose()  # DuckDB: one process holds the file for writing
    writer = _writer(url, D1, 150_000)  # 3,000,000 rows
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(30)
    committed = "committed" in (writer.stdout.read() or "")
    wh = Warehouse(url)
    found = partition(wh, D1)
    assert len(found) == 1 and (committed or found == {before.run_id: 20_000})
    assert wh.check() == {}
    wh.dispose()
