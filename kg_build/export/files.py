"""What the exports and the KGAT reader share: the errors, the staged folder write, line I/O and checks.

Each export is built in a temporary sibling folder and renamed into place when complete (:func:`staged`),
so a failed export leaves no half-written folder and an existing export is replaced only by a whole one.
"""

from __future__ import annotations

import gzip
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from kg_build.tables import KG

MISSING_NOTE = "MISSING.txt"


class ExportError(ValueError):
    """A KG that cannot be written in a format; the message names the table, the column and the value."""


class FileFormatError(ValueError):
    """A line of an input file that cannot be read; the message is ``file:line: what is wrong``."""


class BenchmarkIncomplete(ValueError):
    """A benchmark folder lacking files; the message names the folder and the files and quotes MISSING.txt."""

    @classmethod
    def for_folder(cls, folder: Path, missing: list[str]) -> BenchmarkIncomplete:
        message = f"{folder}: incomplete benchmark copy"
        if missing:
            message += f"; missing {', '.join(missing)}"
        note = folder / MISSING_NOTE
        if note.is_file():
            quoted = "\n".join(f"    {line}" for line in note.read_text(encoding="utf-8").strip().splitlines())
            message += f"; {note.name} says:\n{quoted}"
        return cls(message)


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final`` to write into; renamed to ``final`` when the block succeeds.

    An existing ``final`` is moved aside, the new folder renamed in, then the old one deleted: a
    reader sees the old export or the new one (or, for an instant, none), never a mix.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = final.with_name(f".{final.name}.tmp-{token}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{token}")
    if final.exists():
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        if old.exists():
            os.rename(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_lines(frame: pl.DataFrame, path: Path) -> None:
    frame.select("line").write_csv(path, include_header=False, quote_style="never", line_terminator="\n")


def read_lines(path: Path) -> pl.DataFrame:
    """``line`` (1-based, physical), ``raw``: the non-blank lines of a UTF-8 text file, gzip'd or not."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FileFormatError(f"{path}: not a readable gzip file ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None
    return (
        pl.DataFrame({"raw": [text]}, schema={"raw": pl.String})
        .select(pl.col("raw").str.split("\n"))
        .explode("raw")
        .with_row_index("line", offset=1)
        .with_columns(pl.col("line").cast(pl.Int64), pl.col("raw").str.strip_suffix("\r").str.strip_prefix("\ufeff"))
        .filter(pl.col("raw").str.strip_chars() != "")
    )


def read_int_lines(path: Path, shape: str) -> pl.DataFrame:
    """``line, raw, ids``: each line's whitespace-separated non-negative integers."""
    rows = read_lines(path).with_columns(
        pl.col("raw").str.extract_all(r"\S+").cast(pl.List(pl.Int64), strict=False).alias("ids")
    )
    bad = pl.col("ids").list.eval(pl.element().is_null() | (pl.element() < 0)).list.any()
    fail_at_line(rows, path, bad, f"expected `{shape}` as non-negative integers")
    return rows


def fail_at_line(rows: pl.DataFrame, path: Path, condition: pl.Expr, reason: str) -> None:
    """Raise :class:`FileFormatError` naming the first line where ``condition`` holds (null counts as bad).

    ``rows`` holds ``line`` (1-based) and ``raw`` (the line's text) beside the parsed columns.
    """
    bad = rows.filter(condition.fill_null(True))
    if bad.height:
        first = bad.sort("line").row(0, named=True)
        more = f" ({bad.height - 1:,} more such lines)" if bad.height > 1 else ""
        raise FileFormatError(f"{path}:{first['line']}: {reason}: {first['raw'][:200]!r}{more}")


def active_triples(kg: KG) -> pl.DataFrame:
    """The triples, checked to point at active entities and relations only."""
    entities = kg.entities.filter(~pl.col("retired"))["entity_id"].implode()
    relations = kg.relations.filter(~pl.col("retired"))["relation_id"].implode()
    bad = kg.triples.filter(
        ~pl.col("head_id").is_in(entities) | ~pl.col("tail_id").is_in(entities)
        | ~pl.col("relation_id").is_in(relations)
    )
    if bad.height:
        raise ExportError(f"triples: {bad.height:,} triples point at retired or unknown entities or relations, "
                          f"e.g. {bad.row(0, named=True)}")
    return kg.triples


def check_tokens(frame: pl.DataFrame, table: str, column: str, pattern: str, what: str) -> None:
    """Raise :class:`ExportError` naming the first value of ``table.column`` matching ``pattern``."""
    bad = frame.filter(pl.col(column).str.contains(pattern))
    if bad.height:
        more = f" ({bad.height - 1:,} more)" if bad.height > 1 else ""
        raise ExportError(f"{table}.{column}: value {bad[column][0]!r} contains {what}, which separates fields "
                          f"in this format{more}")


def require_matched(frame: pl.DataFrame, column: str, table: str, key: str) -> None:
    missing = frame.filter(pl.col(column).is_null())
    if missing.height:
        raise ExportError(f"{table}.{key}: {missing.height:,} rows point at {key} {missing[key][0]}, "
                          f"which is not in {table}")
