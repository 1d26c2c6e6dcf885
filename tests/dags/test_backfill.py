"""A real ``airflow standalone`` (``make airflow``'s launcher): a backfill of kg_refresh over three nights, created
with ``airflow backfill create`` as an operator would, writes one partition per night and no duplicates, also when
the same backfill is run again; stopping the launcher stops every process it started."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.dags.conftest import airflow_cli, local, pipeline_env

NIGHTS = ["2026-09-01", "2026-09-02", "2026-09-03"]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("standalone")
    # the DAGs are live, as `make airflow` starts them (a paused DAG's backfill runs stay queued): kg_refresh also
    # runs its latest nightly run, and kg_train and kg_score follow each published KG
    env = pipeline_env(home)
    port = free_port()
    started = local("standalone", "--port", str(port), "--detach", env=env, timeout=300)
    pgid = int((home / "airflow" / "standalone.pid").read_text()) if started.returncode == 0 else None
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert f"Airflow UI: http://127.0.0.1:{port}" in started.stdout
        _wait_for_dags(env, home)
        yield home, env, pgid
    finally:
        stopped = local("stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        if pgid is not None:
            with pytest.raises(ProcessLookupError):
                os.killpg(pgid, 0)  # the whole process group is gone: api-server, scheduler, workers


def _wait_for_dags(env: dict[str, str], home: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = airflow_cli("dags", "list", "-o", "json", env=env, home=home)
        if listed.returncode == 0 and "kg_refresh" in listed.stdout:
            return
        time.sleep(3)
    raise AssertionError("the DAG processor did not register kg_refresh in time")


def _backfill(env: dict[str, str], home: Path, *extra: str, timeout: float = 420) -> list[dict]:
    deadline = time.monotonic() + timeout
    # The scheduler marks the previous backfill complete a little after its last run, and SQLite admits one
    # writer: while the scheduler writes, the CLI may find the database locked. Both pass; try again.
    while True:
        created = airflow_cli("backfill", "create", "--dag-id", "kg_refresh", "--from-date", NIGHTS[0],
                              "--to-date", f"{NIGHTS[-1]}T23:59:59", *extra, env=env, home=home)
        transient = "AlreadyRunningBackfill" in created.stderr or "database is locked" in created.stderr
        if created.returncode == 0 or not transient or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    while True:
        listed = airflow_cli("dags", "list-runs", "kg_refresh", "-o", "json", env=env, home=home)
        lines = [line for line in listed.stdout.splitlines() if line.startswith("[")]  # past Airflow's warnings
        runs = json.loads(lines[-1]) if lines else []
        if len(runs) > len(NIGHTS) and all(r["state"] in ("success", "failed") for r in runs):
            return [r for r in runs if r["run_id"].startswith("backfill__")]
        assert time.monotonic() < deadline, f"backfill not finished: {runs}"
        time.sleep(5)


def _partitions(home: Path, dataset: str) -> list[str]:
    return sorted(str(p.relative_to(home / "lake" / dataset)) for p in (home / "lake" / dataset).glob("**/run_date=*"))


def test_a_backfill_of_three_nights_writes_three_partitions_and_no_duplicates(standalone):
    home, env, _ = standalone
    runs = _backfill(env, home)
    assert sorted((r["run_id"], r["state"]) for r in runs) == [
        (f"backfill__{night}T02:00:00+00:00", "success") for night in NIGHTS]
    for dataset in ("catalog", "interactions", "alignment"):
        assert _partitions(home, dataset)[:3] == [f"run_date={n}" for n in NIGHTS]
    assert [p for p in _partitions(home, "raw_triples") if p.split("=")[-1] in NIGHTS] == [
        f"source={s}/run_date={n}" for s in ("dbpedia", "wikidata") for n in NIGHTS]
    versions = _kg_versions(home)
    assert sorted(d for d in versions.values() if d in NIGHTS) == NIGHTS  # one KG version per night
    newest = max(versions.values())  # the nightly run of today, when it ran before the backfill's nights
    assert (home / "lake" / "kg" / "_CURRENT").read_text().strip() == f"version={_version_of(versions, newest)}"

    # the same backfill again (reprocessing the completed nights): every night rewrites its own partitions
    before = {d: _partitions(home, d) for d in ("catalog", "interactions", "alignment", "raw_triples")}
    again = _backfill(env, home, "--reprocess-behavior", "completed")
    first_done = max(r["end_date"] for r in runs)
    assert sorted(r["run_id"] for r in again) == sorted(r["run_id"] for r in runs)  # the same runs, run again
    assert all(r["state"] == "success" and r["start_date"] > first_done for r in again), again
    assert _kg_versions(home) == versions
    assert {d: _partitions(home, d) for d in before} == before


def _kg_versions(home: Path) -> dict[str, str]:
    return {p.name: json.loads((p / "_MANIFEST.json").read_text())["extra"]["run_date"]
            for p in (home / "lake" / "kg").glob("version=*")}


def _version_of(versions: dict[str, str], night: str) -> int:
    return int(next(name for name, d in versions.items() if d == night).removeprefix("version="))
