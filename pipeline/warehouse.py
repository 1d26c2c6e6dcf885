"""The warehouse: SQLAlchemy access, the schema from ``sql/``, and one-transaction partition swaps.

A scoring run's recommendations and explanations are bulk-loaded into session-local staging tables (Arrow into
DuckDB, ``COPY`` into PostgreSQL; never row by row), then one transaction deletes the run's ``(run_date, model)``
partition, inserts the staged rows, upserts the catalog items, applies retention, marks the run it replaces
``superseded``, writes its own ``scoring_runs`` row last, and runs every check in ``sql/checks/``; any error or
violation rolls the whole transaction back. Readers (``latest_recommendations``) therefore see the previous run or
the new one, never a half-written or mixed partition, and a re-run of a date replaces it.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from pipeline.lake import conform
from pipeline.settings import PROJECT_ROOT, redact_url

log = logging.getLogger("kgrec.warehouse")

SQL_DIR = PROJECT_ROOT / "sql"
COPY_CHUNK_ROWS = 250_000

# The per-row columns a run stages; the partition columns (run_date, model, run_id) are added by the swap.
RECOMMENDATIONS = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("rank", pa.int16()),
                             ("score", pa.float64())])
EXPLANATIONS = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("path_rank", pa.int16()),
                          ("path_json", pa.string()), ("explanation", pa.string())])
ITEMS = pa.schema([("item_id", pa.string()), ("entity_iri", pa.string()), ("title", pa.string())])
SQL_TYPES = {pa.string(): "text", pa.int16(): "smallint", pa.float64(): "double precision"}  # staging columns
STAGED = {"recommendations": RECOMMENDATIONS, "recommendation_explanations": EXPLANATIONS, "catalog_items": ITEMS}


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached, or a write was refused; nothing was changed."""


class ChecksFailed(WarehouseError):
    """A check query returned rows; the run's transaction was rolled back."""

    def __init__(self, violations: dict[str, list[dict[str, Any]]]) -> None:
        self.violations = violations
        shown = "; ".join(f"{name}: {rows[:3]}" for name, rows in violations.items())
        super().__init__(f"warehouse checks failed, the run was rolled back: {shown}")


@dataclass(frozen=True)
class Run:
    """One scoring run: what it is, and the rows it writes (Arrow tables of the ``STAGED`` schemas)."""

    run_id: str
    run_date: date
    model: str
    kg_version: int
    model_version: int
    recommendations: pa.Table
    explanations: pa.Table
    items: pa.Table
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    merge: bool = False  # rows for some users only: the partition keeps the other users' rows (under this run)


@dataclass(frozen=True)
class Written:
    """What a swap did, with its timings (seconds)."""

    run_id: str
    rows: int
    explanations: int
    replaced: int  # rows of the previous run of the same partition
    expired: int  # rows deleted by retention
    cutoff: date | None  # the oldest run date retention keeps
    load_s: float
    swap_s: float
    checks_s: float

    @property
    def rows_per_s(self) -> float:
        total = self.rows + self.explanations
        return total / max(self.load_s + self.swap_s, 1e-9)


class Warehouse:
    """A warehouse at a SQLAlchemy URL (``duckdb:///FILE`` or ``postgresql+psycopg://...``)."""

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        args = {"connect_timeout": connect_timeout_s} if url.startswith("postgresql") else {}
        if url.startswith("duckdb:///"):
            Path(url.removeprefix("duckdb:///")).parent.mkdir(parents=True, exist_ok=True)
            _quiet_duckdb_exit()
        self.engine = sa.create_engine(url, connect_args=args, pool_pre_ping=True)
        self.dialect = self.engine.dialect.name  # "duckdb" | "postgresql"

    def __repr__(self) -> str:
        return f"Warehouse({self.safe_url!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction; connection errors become :class:`WarehouseError` naming the (redacted) URL."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:  # unreachable, or a statement failed: nothing was committed
            raise WarehouseError(f"warehouse {self.safe_url}: {_first_line(exc)}") from exc

    # -- schema ------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the tables (``sql/ddl``, plus ``sql/ddl/<dialect>``) and views (``sql/marts``); idempotent."""
        files = sorted((SQL_DIR / "ddl").glob("*.sql")) + sorted((SQL_DIR / "ddl" / self.dialect).glob("*.sql"))
        files += [SQL_DIR / "marts" / f"{name}.sql" for name in ("latest_recommendations", "recommendations_enriched")]
        with self.begin() as conn:
            if self.dialect == "postgresql":  # one schema creation at a time (concurrent runs, first use)
                conn.execute(sa.text("select pg_advisory_xact_lock(hashtext('kgrec:schema'))"))
            for path in files:
                for statement in statements(path.read_text(encoding="utf-8")):
                    conn.execute(sa.text(statement))

    def ping(self) -> None:
        with self.begin() as conn:
            conn.execute(sa.text("select 1"))

    # -- the partition swap ------------------------------------------------------------------
    def replace_partition(self, run: Run, *, retention_days: int | None = None, checks: bool = True) -> Written:
        """Write ``run`` as its ``(run_date, model)`` partition in one transaction (see the module docstring)."""
        tables = {name: conform(getattr(run, attr), STAGED[name], name, WarehouseError) for name, attr in
                  (("recommendations", "recommendations"), ("recommendation_explanations", "explanations"),
                   ("catalog_items", "items"))}
        params = {"run_date": run.run_date, "model": run.model, "run_id": run.run_id}
        with self.begin() as conn:
            if self.dialect == "postgresql":  # concurrent runs of one model take turns
                conn.execute(sa.text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": f"kgrec:{run.model}"})
            cutoff = self._cutoff(conn, run, retention_days)
            began = time.perf_counter()
            for name, table in tables.items():
                self._stage(conn, name, table)
            if run.merge:
                self._carry_over(conn, params)
            rows, explanations = (conn.execute(sa.text(f"select count(*) from stg_{name}")).scalar()  # noqa: S608
                                  for name in ("recommendations", "recommendation_explanations"))
            loaded = time.perf_counter()
            replaced = _rowcount(conn.execute(sa.text(
                "delete from recommendations where run_date = :run_date and model = :model"), params))
            conn.execute(sa.text("delete from recommendation_explanations where run_date = :run_date "
                                 "and model = :model"), params)
            conn.execute(sa.text(
                "insert into recommendations (run_date, model, user_id, item_id, run_id, rank, score) "
                "select :run_date, :model, user_id, item_id, :run_id, rank, score from stg_recommendations"), params)
            conn.execute(sa.text(
                "insert into recommendation_explanations "
                "(run_date, model, user_id, item_id, run_id, path_rank, path_json, explanation) "
                "select :run_date, :model, user_id, item_id, :run_id, path_rank, cast(path_json as json), explanation "
                "from stg_recommendation_explanations"), params)
            conn.execute(sa.text(
                "insert into catalog_items (item_id, entity_iri, title, kg_version, updated_at) "
                "select item_id, entity_iri, title, :kg_version, :now from stg_catalog_items "
                "on conflict (item_id) do update set entity_iri = excluded.entity_iri, title = excluded.title, "
                "kg_version = excluded.kg_version, updated_at = excluded.updated_at"),
                {"kg_version": run.kg_version, "now": datetime.now(UTC)})
            expired = self._expire(conn, run.model, cutoff) if cutoff else 0
            conn.execute(sa.text("update scoring_runs set status = 'superseded' where run_date = :run_date "
                                 "and model = :model and status = 'succeeded'"), params)
            conn.execute(sa.text(
                "insert into scoring_runs (run_id, run_date, model, kg_version, model_version, status, row_count, "
                "explanation_count, metrics, error, started_at, finished_at) values (:run_id, :run_date, :model, "
                ":kg_version, :model_version, 'succeeded', :rows, :explanations, cast(:metrics as json), null, "
                ":started_at, :finished_at)"),
                {**params, "kg_version": run.kg_version, "model_version": run.model_version,
                 "rows": rows, "explanations": explanations,
                 "metrics": json.dumps(run.metrics, sort_keys=True), "started_at": run.started_at,
                 "finished_at": datetime.now(UTC)})
            if self.dialect == "postgresql":  # fresh statistics, so the checks and consumers get sane plans
                conn.execute(sa.text("analyze recommendations, recommendation_explanations, catalog_items"))
            swapped = time.perf_counter()
            if checks:
                violations = self._violations(conn)
                if violations:
                    raise ChecksFailed(violations)
            for name in tables:
                conn.execute(sa.text(f"drop table if exists stg_{name}"))  # noqa: S608 - fixed names
        done = time.perf_counter()
        return Written(run.run_id, rows, explanations, replaced, expired, cutoff, round(loaded - began, 3),
                       round(swapped - loaded, 3), round(done - swapped, 3))

    def record_failure(self, run: Run, error: str) -> None:
        """A ``failed`` row for a run that wrote nothing (its own small transaction; best effort)."""
        try:
            with self.begin() as conn:
                conn.execute(sa.text(
                    "insert into scoring_runs (run_id, run_date, model, kg_version, model_version, status, "
                    "row_count, explanation_count, metrics, error, started_at, finished_at) values (:run_id, "
                    ":run_date, :model, :kg_version, :model_version, 'failed', 0, 0, null, :error, :started_at, "
                    ":finished_at)"),
                    {"run_id": run.run_id, "run_date": run.run_date, "model": run.model,
                     "kg_version": run.kg_version, "model_version": run.model_version, "error": error[:2000],
                     "started_at": run.started_at, "finished_at": datetime.now(UTC)})
        except (WarehouseError, sa.exc.SQLAlchemyError) as exc:
            log.warning("warehouse: could not record the failed run %s: %s", run.run_id, _first_line(exc))

    # -- reading -----------------------------------------------------------------------------
    def check(self) -> dict[str, list[dict[str, Any]]]:
        """Every check of ``sql/checks/`` that returns rows: ``{check: first violating rows}``."""
        with self.begin() as conn:
            return self._violations(conn)

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """A query's result as a polars frame (for tests, reports and benchmarks)."""
        with self.begin() as conn:
            result = conn.execute(sa.text(sql), params or {})
            rows = result.fetchall()
            return pl.DataFrame([tuple(r) for r in rows], schema=list(result.keys()), orient="row",
                                infer_schema_length=None)

    # -- internals ---------------------------------------------------------------------------
    def _cutoff(self, conn: sa.Connection, run: Run, retention_days: int | None) -> date | None:
        """The oldest run date kept after this run (newest run date of the model minus ``retention_days``)."""
        if retention_days is None:
            return None
        newest = conn.execute(sa.text("select max(run_date) from scoring_runs where model = :model "
                                      "and status = 'succeeded'"), {"model": run.model}).scalar()
        newest = max(_as_date(newest), run.run_date) if newest is not None else run.run_date
        cutoff = newest - timedelta(days=retention_days)
        if run.run_date < cutoff:
            raise WarehouseError(
                f"run date {run.run_date} of {run.model!r} is older than the retention window ({retention_days} "
                f"days before its newest run, {newest}); it would be deleted at once: raise warehouse.retention_days")
        return cutoff

    def _expire(self, conn: sa.Connection, model: str, cutoff: date) -> int:
        params = {"model": model, "cutoff": cutoff}
        expired = _rowcount(conn.execute(sa.text(
            "delete from recommendations where model = :model and run_date < :cutoff"), params))
        conn.execute(sa.text("delete from recommendation_explanations where model = :model and run_date < :cutoff"),
                     params)
        conn.execute(sa.text("update scoring_runs set status = 'expired' where model = :model "
                             "and run_date < :cutoff and status = 'succeeded'"), params)
        if expired:
            log.info("warehouse: retention removed %d rows of %s before %s", expired, model, cutoff)
        return expired

    def _carry_over(self, conn: sa.Connection, params: dict[str, Any]) -> None:
        """Into staging, the partition's rows of the users this run did not score (explanations first, while
        ``stg_recommendations`` still holds only the scored users)."""
        conn.execute(sa.text(
            "insert into stg_recommendation_explanations (user_id, item_id, path_rank, path_json, explanation) "
            "select user_id, item_id, path_rank, cast(path_json as text), explanation "
            "from recommendation_explanations where run_date = :run_date and model = :model "
            "and user_id not in (select user_id from stg_recommendations)"), params)
        conn.execute(sa.text(
            "insert into stg_recommendations (user_id, item_id, rank, score) select user_id, item_id, rank, score "
            "from recommendations where run_date = :run_date and model = :model "
            "and user_id not in (select user_id from stg_recommendations)"), params)

    def _stage(self, conn: sa.Connection, name: str, table: pa.Table) -> None:
        """``stg_<name>``: a session-local table with ``table``'s rows, bulk-loaded."""
        columns = ", ".join(table.column_names)
        # Declared columns, not `create ... as select ... where 1 = 0`: DuckDB 2.0.0 loses every row of a table
        # created that way once it holds a full row group (122,880 rows) (tests/pipeline/test_warehouse.py).
        declared = ", ".join(f"{f.name} {SQL_TYPES[f.type]}" for f in table.schema)
        conn.execute(sa.text(f"drop table if exists stg_{name}"))  # noqa: S608 - fixed names
        conn.execute(sa.text(f"create temporary table stg_{name} ({declared})"))
        if not table.num_rows:
            return
        raw = conn.connection.driver_connection
        if self.dialect == "duckdb":
            view = f"arrow_{name}"
            raw.register(view, table)
            try:
                raw.execute(f"insert into stg_{name} ({columns}) select {columns} from {view}")
            finally:
                raw.unregister(view)
        else:
            frame = pl.from_arrow(table)
            with raw.cursor() as cursor, cursor.copy(f"copy stg_{name} ({columns}) from stdin (format csv)") as copy:
                for start in range(0, frame.height, COPY_CHUNK_ROWS):
                    copy.write(frame.slice(start, COPY_CHUNK_ROWS).write_csv(include_header=False))

    def _violations(self, conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
        found = {}
        for path in sorted((SQL_DIR / "checks").glob("*.sql")):
            body = path.read_text(encoding="utf-8").strip().rstrip(";")
            result = conn.execute(sa.text(f"select * from ({body}) as violations limit 5"))
            rows = [dict(r._mapping) for r in result]
            if rows:
                found[path.stem] = rows
        return found


def _quiet_duckdb_exit() -> None:
    """DuckDB 2.0's bindings (nanobind) print a page of "leaked instance" warnings at interpreter exit when torch
    and SQLAlchemy's duckdb dialect were loaded in the same process: its module-level type constants outlive
    nanobind's own teardown. Nothing leaks at run time; clearing those modules at exit, after every other
    handler, keeps the CLI's and the workers' stderr readable."""
    if getattr(_quiet_duckdb_exit, "registered", False):
        return
    _quiet_duckdb_exit.registered = True  # type: ignore[attr-defined]

    def tidy() -> None:
        gc.collect()
        for name, module in list(sys.modules.items()):
            if name.startswith(("duckdb", "_duckdb")) and name != "duckdb_engine" and module is not None:
                vars(module).clear()
        gc.collect()

    atexit.register(tidy)


def statements(text: str) -> list[str]:
    """The statements of a SQL file: split at semicolons that end a line; comment-only pieces dropped."""
    pieces = re.split(r";\s*$", text, flags=re.MULTILINE)
    out = []
    for piece in pieces:
        code = "\n".join(line for line in piece.splitlines() if not line.strip().startswith("--")).strip()
        if code:
            out.append(piece.strip())
    return out


def _rowcount(result: sa.CursorResult) -> int:
    count = result.rowcount
    if count is None or count < 0:  # duckdb reports the count as a result row
        row = result.fetchone() if result.returns_rows else None
        return int(row[0]) if row else 0
    return int(count)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
