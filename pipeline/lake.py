"""The lake: Hive-style Parquet partitions, atomic writes, manifests and ``_CURRENT`` pointers.

Layout under the lake root::

    <dataset>/<key>=<value>[/<key>=<value>...]/<name>.parquet + _MANIFEST.json
    <dataset>/_CURRENT              the published partition ("run_date=2026-11-21"), moved only by publish
    <dataset>/.staging/...          partitions being written (never visible to readers)

A write goes to ``.staging/`` and replaces the partition only when every file and the manifest
are on disk: on Linux the two directories are swapped with ``renameat2(RENAME_EXCHANGE)``, so a
reader sees either the old or the new partition and never a gap or a mix; elsewhere two renames
are used and :meth:`Lake.write` restores the old partition if a crash fell between them. A
partition counts only when its ``_MANIFEST.json`` is present (the manifest is written last, so it
is also the commit marker on object stores). Paths go through ``pyarrow.fs`` so the root may
later be an ``s3://`` or ``gs://`` URL.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.settings import PROJECT_ROOT

MANIFEST = "_MANIFEST.json"
CURRENT = "_CURRENT"
STAGING = ".staging"
TRASH = ".trash"
STALE_FOREIGN_STAGING_S = 24 * 3600

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ATTACHMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")

TableLike = pa.Table | pl.DataFrame | Iterable[pa.RecordBatch]


class LakeError(RuntimeError):
    """A lake operation that cannot be done; the message names the dataset and partition."""


class PartitionNotFound(LakeError):
    pass


@dataclass(frozen=True)
class FileEntry:
    rows: int
    bytes: int
    sha256: str
    columns: list[str]


@dataclass(frozen=True)
class Manifest:
    """What a partition holds and where it came from (lineage)."""

    dataset: str
    partition: dict[str, str]
    created_at: str
    code_version: str
    config_hash: str
    files: dict[str, FileEntry]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> bytes, sha256

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: entry.rows for name, entry in self.files.items()}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["files"] = {k: FileEntry(**v) for k, v in data["files"].items()}
        return cls(**data)


def run_date_key(run_date: date) -> dict[str, str]:
    return {"run_date": run_date.isoformat()}


def partition_name(key: Mapping[str, str]) -> str:
    """``{"source": "wikidata", "run_date": "2026-11-21"}`` -> ``source=wikidata/run_date=2026-11-21``."""
    if not key:
        raise LakeError("a partition key needs at least one column")
    for col, value in key.items():
        if not _NAME.match(col) or not _VALUE.match(str(value)):
            raise LakeError(f"bad partition key {col}={value!r}: use [a-z0-9_] names and [A-Za-z0-9._-] values")
    return "/".join(f"{col}={value}" for col, value in key.items())


def parse_partition_name(name: str) -> dict[str, str]:
    key = dict(part.split("=", 1) for part in name.strip().strip("/").split("/"))
    partition_name(key)  # validates
    return key


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when run from a checkout (``0.1.0+g1a2b3c4[.dirty]``)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}" + (".dirty" if dirty else "")


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Lineage record of an input file: path, size and sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


class Lake:
    """Partitioned Parquet datasets under one root (a local path or a pyarrow-supported URL)."""

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        if "://" in text:
            self.fs, self.root = pafs.FileSystem.from_uri(text)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(text).resolve())
        self._local = isinstance(self.fs, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- paths ---------------------------------------------------------------------------
    def dataset_path(self, dataset: str) -> str:
        if not _NAME.match(dataset):
            raise LakeError(f"bad dataset name {dataset!r}: use lowercase letters, digits and _")
        return f"{self.root}/{dataset}"

    def partition_path(self, dataset: str, key: Mapping[str, str]) -> str:
        return f"{self.dataset_path(dataset)}/{partition_name(key)}"

    # -- write ---------------------------------------------------------------------------
    def write(
        self,
        dataset: str,
        key: Mapping[str, str],
        tables: Mapping[str, TableLike],
        *,
        config_hash: str,
        inputs: Iterable[Mapping[str, Any]] = (),
        extra: Mapping[str, Any] | None = None,
        schemas: Mapping[str, pa.Schema] | None = None,
        carry_over: Iterable[str] = (),
        attachments: Mapping[str, bytes] | None = None,
    ) -> Manifest:
        """Write ``{name: table}`` as one partition, replacing any previous one atomically.

        Tables may be Arrow tables, polars frames, or iterables of record batches (streamed, for
        data larger than memory). ``schemas`` casts named tables to a contract schema first.
        ``carry_over`` names tables of the current partition to keep as they are (when present).
        ``attachments`` are other files for people (``review.csv``, ``report.html``), written and
        swapped in with the tables and recorded in the manifest.
        """
        if not tables and not carry_over and not attachments:
            raise LakeError(f"{dataset}/{partition_name(key)}: nothing to write")
        attachments = dict(attachments or {})
        for name in (f"{t}.parquet" for t in tables):
            if not _FILE.match(name) or name.startswith("_"):
                raise LakeError(f"{dataset}: bad file name {name!r}")
        for name in attachments:
            if not _ATTACHMENT.match(name) or name.startswith("_"):
                raise LakeError(f"{dataset}: bad attachment name {name!r} (a file name, or folder/file name)")
        clash = [a for a in attachments if a.endswith(".parquet") and a.removesuffix(".parquet") in tables]
        if clash:
            raise LakeError(f"{dataset}: attachment {clash[0]!r} would overwrite a table")
        final = self.partition_path(dataset, key)
        base = self.dataset_path(dataset)
        self._recover(dataset)
        self._remove_stale_staging(dataset)
        staging = f"{base}/{STAGING}/{_owner_tag(partition_name(key))}"
        self.fs.create_dir(staging, recursive=True)
        try:
            files = self._carry_over(dataset, key, [n for n in carry_over if n not in tables], staging)
            files |= {
                name: self._write_table(f"{staging}/{name}.parquet", table, (schemas or {}).get(name))
                for name, table in tables.items()
            }
            attached = {}
            for name, blob in attachments.items():
                if "/" in name:
                    self.fs.create_dir(f"{staging}/{name.rsplit('/', 1)[0]}", recursive=True)
                with self.fs.open_output_stream(f"{staging}/{name}") as fh:
                    fh.write(blob)
                attached[name] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
            manifest = Manifest(
                dataset=dataset,
                partition={k: str(v) for k, v in key.items()},
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                code_version=code_version(),
                config_hash=config_hash,
                files=files,
                inputs=[dict(i) for i in inputs],
                extra=dict(extra or {}),
                attachments=attached,
            )
            self._write_text(f"{staging}/{MANIFEST}", manifest.to_json())
            self._sync_dir(staging)
            self._swap_in(staging, final, base)
        except BaseException:
            self._delete_dir_quietly(staging)
            raise
        return manifest

    def attach(
        self, dataset: str, key: Mapping[str, str], attachments: Mapping[str, bytes],
        *, extra: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Add files (and manifest ``extra`` keys) to a complete partition, its tables kept as they are.

        The partition is rewritten through staging like any write, so readers see the old or the
        new one; earlier attachments of other names are kept.
        """
        current = self.manifest(dataset, key)
        kept = {name: self.attachment(dataset, key, name) for name in current.attachments if name not in attachments}
        return self.write(
            dataset, key, {}, config_hash=current.config_hash, inputs=current.inputs,
            extra={**current.extra, **(extra or {})}, carry_over=list(current.files),
            attachments={**kept, **attachments},
        )

    def _write_table(self, path: str, table: TableLike, schema: pa.Schema | None) -> FileEntry:
        if isinstance(table, pl.DataFrame):
            table = table.to_arrow()
        if isinstance(table, pa.Table):
            if schema is not None:
                table = conform(table, schema, path)
            pq.write_table(table, path, filesystem=self.fs, compression="zstd")
        else:
            writer = None
            try:
                for batch in table:
                    batch_table = pa.Table.from_batches([batch])
                    if schema is not None:
                        batch_table = conform(batch_table, schema, path)
                    if writer is None:
                        writer = pq.ParquetWriter(path, batch_table.schema, filesystem=self.fs, compression="zstd")
                    writer.write_table(batch_table)
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                if schema is None:
                    raise LakeError(f"{path}: an empty batch stream needs a schema")
                pq.write_table(schema.empty_table(), path, filesystem=self.fs, compression="zstd")
        meta = pq.read_metadata(path, filesystem=self.fs)
        digest, size = self._hash(path)
        return FileEntry(rows=meta.num_rows, bytes=size, sha256=digest, columns=meta.schema.names)

    def _carry_over(self, dataset: str, key: Mapping[str, str], names: list[str], staging: str) -> dict[str, FileEntry]:
        if not names:
            return {}
        try:
            current = self.manifest(dataset, key)
        except PartitionNotFound:
            return {}
        kept = {}
        for name in names:
            if name in current.files:
                self.fs.copy_file(f"{self.partition_path(dataset, key)}/{name}.parquet", f"{staging}/{name}.parquet")
                kept[name] = current.files[name]
        return kept

    def _swap_in(self, staging: str, final: str, base: str) -> None:
        exists = self.fs.get_file_info(final).type == pafs.FileType.Directory
        if not exists:
            self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
            self.fs.move(staging, final)
        elif self._local and _rename_exchange(staging, final):
            self._delete_dir_quietly(staging)  # now holds the previous partition
        else:
            trash = f"{base}/{TRASH}/{_owner_tag(final[len(base) + 1:])}"
            self.fs.create_dir(trash.rsplit("/", 1)[0], recursive=True)
            self.fs.move(final, trash)
            self.fs.move(staging, final)
            self._delete_dir_quietly(trash)
        if self._local:
            self._sync_dir(final.rsplit("/", 1)[0])

    # -- read ----------------------------------------------------------------------------
    def manifest(self, dataset: str, key: Mapping[str, str]) -> Manifest:
        path = f"{self.partition_path(dataset, key)}/{MANIFEST}"
        try:
            with self.fs.open_input_stream(path) as fh:
                return Manifest.from_json(fh.read().decode())
        except FileNotFoundError:
            raise PartitionNotFound(f"{dataset}/{partition_name(key)} does not exist in {self.root}") from None

    def attachment(self, dataset: str, key: Mapping[str, str], name: str) -> bytes:
        """The bytes of an attachment (``review.csv``) of a complete partition."""
        manifest = self.manifest(dataset, key)
        if name not in manifest.attachments:
            raise LakeError(f"{dataset}/{partition_name(key)} has no attachment {name!r}")
        with self.fs.open_input_stream(f"{self.partition_path(dataset, key)}/{name}") as fh:
            return fh.read()

    def read(self, dataset: str, key: Mapping[str, str], name: str) -> pl.DataFrame:
        """Read one table of a complete partition."""
        return pl.from_arrow(pq.read_table(self._table_path(dataset, key, name), filesystem=self.fs))

    def scan(self, dataset: str, key: Mapping[str, str], name: str) -> pl.LazyFrame:
        """One table of a complete partition as a lazy scan (filters and column choices pushed down)."""
        path = self._table_path(dataset, key, name)
        if self._local:
            return pl.scan_parquet(path)
        return pl.from_arrow(pq.read_table(path, filesystem=self.fs)).lazy()

    def _table_path(self, dataset: str, key: Mapping[str, str], name: str) -> str:
        manifest = self.manifest(dataset, key)
        if name not in manifest.files:
            raise LakeError(
                f"{dataset}/{partition_name(key)} has no table {name!r} (it has {', '.join(manifest.files)})"
            )
        return f"{self.partition_path(dataset, key)}/{name}.parquet"

    def partitions(self, dataset: str) -> list[dict[str, str]]:
        """Complete partitions of a dataset (those with a manifest), sorted by name."""
        base = self.dataset_path(dataset)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            rel = info.path[len(base) + 1:]
            if info.base_name == MANIFEST and not rel.startswith((STAGING, TRASH)):
                found.append(parse_partition_name(rel.rsplit("/", 1)[0]))
        return sorted(found, key=_natural)

    def drop(self, dataset: str, key: Mapping[str, str]) -> None:
        """Remove a partition: its manifest first (from then on it is not listed), then its files."""
        final = self.partition_path(dataset, key)
        if key == self.current(dataset):
            raise LakeError(f"{dataset}/{partition_name(key)} is the published partition; it cannot be dropped")
        try:
            self.fs.delete_file(f"{final}/{MANIFEST}")
        except FileNotFoundError:
            pass
        self._delete_dir_quietly(final)

    def verify(self, dataset: str, key: Mapping[str, str]) -> None:
        """Check every file against the manifest's sha256; raise LakeError naming the first mismatch."""
        manifest = self.manifest(dataset, key)
        expected = {f"{name}.parquet": entry.sha256 for name, entry in manifest.files.items()}
        expected |= {name: entry["sha256"] for name, entry in manifest.attachments.items()}
        for name, sha256 in expected.items():
            digest, _ = self._hash(f"{self.partition_path(dataset, key)}/{name}")
            if digest != sha256:
                raise LakeError(f"{dataset}/{partition_name(key)}/{name} does not match its manifest")

    # -- publish -------------------------------------------------------------------------
    def publish(self, dataset: str, key: Mapping[str, str]) -> None:
        """Point ``<dataset>/_CURRENT`` at a complete, verified partition."""
        self.verify(dataset, key)
        target = f"{self.dataset_path(dataset)}/{CURRENT}"
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        self._write_text(tmp, partition_name(key) + "\n")
        self.fs.move(tmp, target)

    def current(self, dataset: str) -> dict[str, str] | None:
        try:
            with self.fs.open_input_stream(f"{self.dataset_path(dataset)}/{CURRENT}") as fh:
                return parse_partition_name(fh.read().decode())
        except FileNotFoundError:
            return None

    # -- housekeeping --------------------------------------------------------------------
    def _recover(self, dataset: str) -> None:
        """Put back a partition moved to .trash by a write that crashed between its two renames."""
        trash_root = f"{self.dataset_path(dataset)}/{TRASH}"
        for info in self.fs.get_file_info(pafs.FileSelector(trash_root, allow_not_found=True)):
            name = _strip_owner_tag(info.base_name)
            final = f"{self.dataset_path(dataset)}/{name.replace('%2F', '/')}"
            if _owner_alive(info.base_name):
                continue
            if self.fs.get_file_info(final).type == pafs.FileType.NotFound:
                self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
                self.fs.move(info.path, final)
            else:
                self._delete_dir_quietly(info.path)

    def _remove_stale_staging(self, dataset: str) -> None:
        staging_root = f"{self.dataset_path(dataset)}/{STAGING}"
        now = time.time()
        for info in self.fs.get_file_info(pafs.FileSelector(staging_root, allow_not_found=True)):
            alive = _owner_alive(info.base_name)
            foreign_and_old = alive is None and info.mtime and now - info.mtime.timestamp() > STALE_FOREIGN_STAGING_S
            if alive is False or foreign_and_old:
                self._delete_dir_quietly(info.path)

    def _delete_dir_quietly(self, path: str) -> None:
        try:
            self.fs.delete_dir(path)
        except FileNotFoundError:
            pass

    def _write_text(self, path: str, text: str) -> None:
        with self.fs.open_output_stream(path) as fh:
            fh.write(text.encode())
        if self._local:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _hash(self, path: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with self.fs.open_input_stream(path) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def _sync_dir(self, path: str) -> None:
        if not self._local:
            return
        for entry in Path(path).iterdir() if Path(path).is_dir() else ():
            if entry.is_dir():
                self._sync_dir(str(entry))
            elif entry.is_file():
                fd = os.open(entry, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _natural(key: Mapping[str, str]) -> list[tuple[int, int, str]]:
    """Sort key of a partition: numeric values as numbers (version=10 after version=9)."""
    return [(0, int(v), "") if v.isdigit() else (1, 0, v) for v in key.values()]


def conform(table: pa.Table, schema: pa.Schema, where: str, error: type[Exception] = LakeError) -> pa.Table:
    """``table``'s columns of ``schema``, in its order and types; ``error`` names ``where`` and what is wrong."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise error(f"{where}: missing columns {missing} of the contract schema (have {table.column_names})")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise error(f"{where}: does not fit the contract schema: {exc}") from None


# Staging and trash entries are named "<partition>~<host>~<pid>~<uuid>" with "/" escaped, so a
# later write can tell a crashed writer's leftovers (same host, dead pid) from a live one. Neither
# hostnames nor partition values may contain "~".
def _owner_tag(partition: str) -> str:
    return f"{partition.replace('/', '%2F')}~{socket.gethostname()}~{os.getpid()}~{uuid.uuid4().hex[:8]}"


def _strip_owner_tag(name: str) -> str:
    return name.rsplit("~", 3)[0]


def _owner_alive(name: str) -> bool | None:
    """True/False for a writer on this host; None when it ran elsewhere (or the name is foreign)."""
    try:
        _, host, pid, _ = name.rsplit("~", 3)
        pid_num = int(pid)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid_num, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@lru_cache(maxsize=1)
def _renameat2() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return getattr(libc, "renameat2", None)


def _rename_exchange(a: str, b: str) -> bool:
    """Atomically swap two paths (Linux); False when the OS or filesystem cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
        return False
    raise OSError(err, os.strerror(err), a)
