"""Airflow on this machine: ``run`` executes kg_refresh → kg_train → kg_score in-process with ``dag.test()``
(``make run``); ``standalone`` starts ``airflow standalone`` for the UI (``make airflow``); ``stop`` stops it.

Both use ``$KGREC_HOME/airflow`` as AIRFLOW_HOME (SQLite metadata, logs), this folder as the DAGs folder, no
example DAGs, and start the profile's local SPARQL mirrors first (stopped again at the end). Not a DAG file.

    python dags/local.py run [--date YYYY-MM-DD]
    python dags/local.py standalone [--port 8080] [--detach]
    python dags/local.py stop
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

DAGS = Path(__file__).resolve().parent
ROOT = DAGS.parent
CHAIN = ("kg_refresh", "kg_train", "kg_score")
KG_POOL = "kgrec_kg"  # as in kgrec_airflow.KG_POOL (this file does not import Airflow before the env is set)
def airflow_env(home: Path, port: int = 8080) -> dict[str, str]:
    """The environment of every Airflow process started here (the caller's own AIRFLOW__* settings win)."""
    airflow_home = home / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    passwords = airflow_home / "passwords.json"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}) + "\n")
        passwords.chmod(0o600)
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: up to 4 task processes, mostly waiting on I/O
        # live at once: kg_refresh runs nightly, and Asset events queue kg_train and kg_score (as in production)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "KGREC_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone runs `airflow`
    }
    return env | {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dags/local.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--profile", help="kgrec profile (default $KGREC_PROFILE or sample)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the DAG chain in-process with dag.test()")
    run.add_argument("--date", type=date.fromisoformat, help="run date (default today, UTC)")
    run.add_argument("--no-mirrors", action="store_true", help="the endpoints are up already: start no mirror")
    run.add_argument("--conf", type=json.loads, default={}, metavar="JSON",
                     help='params of the kg_refresh run, e.g. \'{"item_limit": 50}\' (validated by its schema)')
    ui = sub.add_parser("standalone", help="airflow standalone on 127.0.0.1 (Ctrl-C stops everything)")
    ui.add_argument("--port", type=int, default=8080)
    ui.add_argument("--detach", action="store_true", help="return once the UI answers; `stop` stops it")
    sub.add_parser("stop", help="stop a detached standalone and its mirrors")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["KGREC_PROFILE"] = args.profile

    sys.path[:0] = [str(ROOT)]
    from pipeline.settings import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"local.py: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return run_chain(settings, args.date or datetime.now(UTC).date(), mirrors=not args.no_mirrors, conf=args.conf)
    if args.command == "standalone":
        return standalone(settings, args.port, detach=args.detach)
    return stop(settings)


# -- make run --------------------------------------------------------------------------------
def run_chain(settings, run_date: date, *, mirrors: bool = True, conf: dict | None = None) -> int:  # noqa: ANN001
    from pipeline import mirror

    os.environ.update(airflow_env(settings.home))
    began = time.monotonic()
    _migrate()
    started = _start_mirrors(settings) if mirrors else []
    try:
        states, ok = _test_chain(run_date, conf or {})
    finally:
        for name in started:
            print(mirror.stop(settings.home, name))
    print(f"\nkgrec: the DAG chain for {run_date} ran in {time.monotonic() - began:.0f}s "
          f"(Airflow metadata: {settings.home / 'airflow' / 'airflow.db'})")
    for line in states:
        print(f"  {line}")
    if not ok:
        return 1
    _show_results(settings, run_date)
    return 0


def _migrate() -> None:
    """Create or upgrade the metadata database, and the pool that lets one KG build run at a time."""
    airflow = Path(sys.executable).with_name("airflow")
    for command in (["db", "migrate"], ["pools", "set", KG_POOL, "1", "one KG build/validate/publish at a time"]):
        done = subprocess.run([str(airflow), *command], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"airflow {' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


def _start_mirrors(settings) -> list[str]:  # noqa: ANN001
    from pipeline import mirror

    started = []
    for spec in mirror.specs_from_settings(settings):
        state, did_start = mirror.start(spec, settings.home)
        print(state.describe() + ("" if did_start else " (already running)"))
        if did_start:
            started.append(spec.name)
    return started


def _test_chain(run_date: date, conf: dict) -> tuple[list[str], bool]:
    """dag.test() each DAG for the run date; between them, check that the Asset event queued the next DAG.

    When a DAG emits no event (a re-run that found nothing new), the next one still runs if it has not succeeded
    for this date yet (an earlier chain stopped before it)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    now = datetime.now(UTC)
    # today's run at the current time (dag.test starts a run at its logical date, so the UI shows true durations);
    # another night at its midnight
    logical = now if run_date == now.date() else datetime(run_date.year, run_date.month, run_date.day, tzinfo=UTC)
    lines = []
    for position, dag_id in enumerate(CHAIN):
        began = time.monotonic()
        run = bag.get_dag(dag_id).test(logical_date=logical, run_conf=conf if dag_id == CHAIN[0] else None)
        tis = sorted(run.get_task_instances(), key=lambda ti: (ti.start_date or logical, ti.map_index))
        states = ", ".join(f"{ti.task_id}{'' if ti.map_index < 0 else f'[{ti.map_index}]'} {ti.state}" for ti in tis)
        lines.append(f"{dag_id}: {run.state} in {time.monotonic() - began:.0f}s ({states})")
        if run.state != "success":
            lines.append(f"{dag_id} did not succeed: see its task logs above; the chain stops here")
            return lines, False
        if position + 1 < len(CHAIN):
            queued = _consume_queue(CHAIN[position + 1])
            if queued:
                lines.append(f"  Asset event queued {CHAIN[position + 1]} ({', '.join(queued)})")
            elif _succeeded(CHAIN[-1], run_date):
                lines.append(f"  {dag_id} emitted no Asset event (nothing new since the last run): chain ends")
                break
            else:
                lines.append(f"  no Asset event, but {CHAIN[-1]} has not succeeded for {run_date}: going on")
    return lines, True


def _succeeded(dag_id: str, run_date: date) -> bool:
    """Has ``dag_id`` a successful run for ``run_date`` (a logical date on that day)?"""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    start = datetime(run_date.year, run_date.month, run_date.day, tzinfo=UTC)
    with create_session() as session:
        found = select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.state == "success",
                                        DagRun.logical_date >= start, DagRun.logical_date < start + timedelta(days=1))
        return session.execute(found.limit(1)).first() is not None


def _consume_queue(dag_id: str) -> list[str]:
    """The assets whose events queued ``dag_id``; the queue rows are removed, as the scheduler would on creating
    the run (this run is made by dag.test instead, so a later scheduler does not run it a second time)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with create_session() as session:
        queued = select(AssetModel.name).join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
        rows = session.execute(queued.where(AssetDagRunQueue.target_dag_id == dag_id)).scalars().all()
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == dag_id))
    return sorted(rows)


def _show_results(settings, run_date: date) -> None:  # noqa: ANN001
    import polars as pl

    from pipeline.report import SAMPLES_SQL, sample_params
    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(settings.warehouse.url)
    try:
        frame = warehouse.frame(SAMPLES_SQL, sample_params(run_date))
    finally:
        warehouse.dispose()
    print(f"\nresults: warehouse {warehouse.safe_url} (tables recommendations, recommendation_explanations, "
          f"scoring_runs; views latest_recommendations, recommendations_enriched)")
    print(f"report:  {settings.lake_root / 'reports' / f'run_date={run_date}' / 'report.html'}")
    shown = SAMPLES_SQL.strip()
    for name, value in sample_params(run_date).items():
        shown = shown.replace(f":{name}", repr(value.isoformat()) if name == "run_date" else str(value))
    print(f"\n{shown};\n")
    with pl.Config(tbl_rows=20, fmt_str_lengths=70, tbl_width_chars=180, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(frame)


# -- make airflow ------------------------------------------------------------------------------
def standalone(settings, port: int, *, detach: bool) -> int:  # noqa: ANN001
    env = os.environ | airflow_env(settings.home, port)
    pid_file = settings.home / "airflow" / "standalone.pid"
    if pid_file.exists() and _group_alive(int(pid_file.read_text())):
        print(f"airflow standalone is running already (pid {pid_file.read_text().strip()}): `make airflow-stop`")
        return 1
    os.environ.update(env)
    _migrate()
    started = _start_mirrors(settings)
    log = settings.home / "airflow" / "standalone.log"
    airflow = Path(sys.executable).with_name("airflow")
    with log.open("ab") as out:  # its own process group: stopping it stops every child (scheduler, workers, …)
        proc = subprocess.Popen([str(airflow), "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    (settings.home / "airflow" / "mirrors.json").write_text(json.dumps(started))
    password = json.loads((settings.home / "airflow" / "passwords.json").read_text())["admin"]
    url = f"http://127.0.0.1:{port}"
    if not _wait_for(url + "/api/v2/monitor/health", proc):
        stop(settings)
        print(f"airflow standalone did not come up: see {log}", file=sys.stderr)
        return 1
    print(f"Airflow UI: {url}  (user admin, password {password}, from "
          f"{settings.home / 'airflow' / 'passwords.json'}); log {log}")
    if detach:
        return 0
    print("Ctrl-C stops Airflow and the mirrors")
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(settings)
    return 0


def stop(settings) -> int:  # noqa: ANN001
    from pipeline import mirror

    pid_file = settings.home / "airflow" / "standalone.pid"
    if pid_file.exists():
        pgid = int(pid_file.read_text())
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.5)
            if not _group_alive(pgid):
                break
        pid_file.unlink()
        print(f"stopped airflow standalone (process group {pgid})")
    mirrors = settings.home / "airflow" / "mirrors.json"
    if mirrors.exists():
        for name in json.loads(mirrors.read_text()):
            print(mirror.stop(settings.home, name))
        mirrors.unlink()
    return 0


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 240.0) -> bool:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(2)
    return False


def _group_alive(pgid: int) -> bool:
    """Is any process of the group (the launcher started standalone as its group leader) still there?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
