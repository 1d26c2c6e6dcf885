"""Stable ids: append-only vocabularies that give each key (an IRI, a user id) one int32 id for good.

A vocabulary is a table ``id int32, key str, first_seen date, retired bool``. Updating it with the
keys of today's build:

- a known key keeps its id (yesterday's ids mean the same today: trained models and SQL joins hold);
- new keys get the next ids, in sorted key order, so the same input always gives the same ids;
- keys absent today are marked ``retired`` (never deleted or renumbered); a key that comes back is
  active again under its old id.

:class:`VocabularyStore` keeps them as ``lake/vocab/<name>.parquet``, replaced atomically under a
lock, and refuses a write that would change an existing id.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import polars as pl

SCHEMA = {"id": pl.Int32, "key": pl.String, "first_seen": pl.Date, "retired": pl.Boolean}
MAX_ID = 2**31 - 1


class VocabularyError(RuntimeError):
    """A vocabulary cannot be updated as asked; the message names it and why."""


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def update(existing: pl.DataFrame, keys: pl.Series, run_date: date, *, name: str = "vocabulary") -> pl.DataFrame:
    """``existing`` with today's ``keys``: new ones appended, absent ones retired, none renumbered."""
    if keys.null_count():
        raise VocabularyError(f"{name}: {keys.null_count()} null keys; every key needs a value")
    today = keys.cast(pl.String).unique().sort().to_frame("key")
    present = existing.join(today, on="key", how="semi")["key"].implode()
    kept = existing.with_columns((~pl.col("key").is_in(present)).alias("retired"))
    new = today.join(existing, on="key", how="anti")
    start = int(existing["id"].max()) + 1 if existing.height else 0
    if start + new.height - 1 > MAX_ID:
        raise VocabularyError(f"{name}: more than {MAX_ID + 1:,} ids")
    added = new.select(
        (pl.int_range(pl.len(), dtype=pl.Int32) + start).alias("id"), "key",
        pl.lit(run_date).alias("first_seen"), pl.lit(False).alias("retired"),
    )
    return pl.concat([kept.select(list(SCHEMA)), added]).cast(SCHEMA).sort("id")  # type: ignore[arg-type]


def check_append_only(before: pl.DataFrame, after: pl.DataFrame, name: str) -> None:
    """Raise unless every key of ``before`` keeps its id in ``after`` and ids stay unique."""
    moved = before.join(after, on="key", how="left", suffix="_after").filter(
        pl.col("id_after").is_null() | (pl.col("id") != pl.col("id_after"))
    )
    if moved.height:
        row = moved.row(0, named=True)
        raise VocabularyError(f"{name}: key {row['key']!r} would lose its id {row['id']} "
                              f"({moved.height} keys); vocabularies are append-only")
    if not after["id"].is_unique().all() or not after["key"].is_unique().all():
        raise VocabularyError(f"{name}: ids and keys must be unique")


class VocabularyStore:
    """The vocabularies of one lake: ``<root>/vocab/<name>.parquet``."""

    def __init__(self, lake_root: Path) -> None:
        self.folder = Path(lake_root) / "vocab"

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def read(self, name: str) -> pl.DataFrame:
        path = self.path(name)
        return pl.read_parquet(path).cast(SCHEMA) if path.exists() else empty()  # type: ignore[arg-type]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (a second nightly run or a backfill waits here)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def update(self, name: str, keys: pl.Series, run_date: date) -> pl.DataFrame:
        """Update and store one vocabulary; return it."""
        with self.locked():
            before = self.read(name)
            after = update(before, keys, run_date, name=name)
            check_append_only(before, after, name)
            if not after.equals(before):
                tmp = self.path(name).with_name(f".{name}.{os.getpid()}.tmp")
                after.write_parquet(tmp)
                os.replace(tmp, self.path(name))
            return after
