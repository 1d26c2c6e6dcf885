"""Reading delimited text files line by line, vectorised, with bad rows quarantined.

Every row keeps its physical line number, so a rejected row is reported as ``file:line: reason``
and the good rows still load. Whole-file problems (a missing file, a wrong header) raise
:class:`CatalogError` instead, because no row of such a file can be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kg_build.schema import REJECTS, empty, polars_schema

# One CSV field: quoted (with "" escapes) or bare. Used to split lines with a regex, vectorised.
_CSV_FIELD = r'"(?:[^"]|"")*"|[^,"]*'
_RESERVED = {"line", "raw", "fields", "n_fields", "encoding_problem"}


class CatalogError(ValueError):
    """A catalog file that cannot be read at all; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Parsed:
    """Rows of a file: ``line`` (1-based), ``raw`` and one string column per field; plus rejects."""

    rows: pl.DataFrame
    rejects: pl.DataFrame


def read_delimited(
    path: Path,
    columns: Sequence[str],
    *,
    sep: str,
    encoding: str = "utf-8",
    header: Sequence[str] | None = None,
    quoted: bool = False,
) -> Parsed:
    """Split ``path`` into ``columns``; lines with the wrong field count or bad bytes are rejects.

    ``header``: the expected header fields (checked, then skipped); None when the file has none.
    ``quoted``: fields may be CSV-quoted (``"Dark Knight, The (2008)"``), separator ``,`` only.
    """
    if not path.is_file():
        raise CatalogError(f"{path}: file not found")
    clash = sorted(set(columns) & _RESERVED)
    if clash:
        raise CatalogError(f"{path}: column name(s) {', '.join(clash)} are reserved; rename them")
    lines = _lines(path, encoding)
    if header is not None:
        if lines.is_empty():
            raise CatalogError(f"{path}: empty file, expected the header {sep.join(header)!r}")
        first = lines.row(0, named=True)
        got = first["raw"].lstrip("\ufeff")
        if [h.strip() for h in got.split(sep)] != list(header):
            raise CatalogError(
                f"{path}:{first['line']}: header is {got!r}, expected {sep.join(header)!r}"
            )
        lines = lines.slice(1)

    bad_bytes = lines.filter(pl.col("encoding_problem").is_not_null())
    lines = lines.filter(pl.col("encoding_problem").is_null()).drop("encoding_problem")
    rejects = [_rejects(bad_bytes, path, pl.col("encoding_problem"))]

    n = len(columns)
    if quoted:
        if sep != ",":
            raise ValueError("quoted fields are supported for ',' only")
        pattern = "^" + ",".join(f"({_CSV_FIELD})" for _ in range(n)) + "$"
        split = lines.with_columns(
            pl.col("raw").str.extract_groups(pattern).alias("fields"),
            pl.col("raw").str.extract_all(rf"(?:^|,)(?:{_CSV_FIELD})").list.len().alias("n_fields"),
        ).unnest("fields")
        split = split.rename({str(i + 1): name for i, name in enumerate(columns)})
        ok = pl.col(columns[0]).is_not_null()
        reason = (
            pl.when(pl.col("raw").str.count_matches('"', literal=True) % 2 == 1)
            .then(pl.lit("malformed quoting: unbalanced double quote"))
            .when(pl.col("n_fields") == n)
            .then(pl.lit("malformed quoting"))
            .otherwise(pl.format(f"expected {n} fields, found {{}}", pl.col("n_fields")))
        )
        rows = split.filter(ok).with_columns(
            [_unquote(pl.col(c)).alias(c) for c in columns]
        )
    else:
        split = lines.with_columns(pl.col("raw").str.split(sep).alias("fields"))
        split = split.with_columns(pl.col("fields").list.len().alias("n_fields"))
        ok = pl.col("n_fields") == n
        reason = pl.format(f"expected {n} fields separated by {sep!r}, found {{}}", pl.col("n_fields"))
        rows = split.filter(ok).with_columns(
            [pl.col("fields").list.get(i).alias(c) for i, c in enumerate(columns)]
        )
    rejects.append(_rejects(split.filter(~ok), path, reason))
    rows = rows.select("line", "raw", *columns)
    return Parsed(rows=rows, rejects=pl.concat(rejects))


def reject_if(
    rows: pl.DataFrame, path: Path, condition: pl.Expr, reason: pl.Expr | str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``rows`` into (kept, rejects) where ``condition`` is true (null counts as false)."""
    flagged = rows.with_columns(condition.fill_null(False).alias("_bad"))
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return (
        flagged.filter(~pl.col("_bad")).drop("_bad"),
        _rejects(flagged.filter(pl.col("_bad")), path, reason_expr),
    )


def reject_duplicates(
    rows: pl.DataFrame, path: Path, key: str | Sequence[str], what: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the first row of each ``key``; later ones are rejects naming the first line."""
    keys = [key] if isinstance(key, str) else list(key)
    rows = rows.with_columns(pl.col("line").min().over(keys).alias("_first"))
    label = pl.concat_str([pl.col(k).cast(pl.String) for k in keys], separator=", ")
    kept, rejects = reject_if(
        rows,
        path,
        pl.col("line") != pl.col("_first"),
        pl.format(f"duplicate {what} {{}} (first on line {{}})", label, pl.col("_first")),
    )
    return kept.drop("_first"), rejects


def int_id(col: str) -> pl.Expr:
    """Integer ids as canonical strings ("007" -> "7"); null when the field is not an integer."""
    return pl.col(col).str.strip_chars().cast(pl.Int64, strict=False).cast(pl.String)


def reject_non_int(rows: pl.DataFrame, path: Path, col: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    return reject_if(rows, path, int_id(col).is_null(), pl.format(f"{col} is not an integer: {{}}", pl.col(col)))


def no_rejects() -> pl.DataFrame:
    return empty(REJECTS)


def _lines(path: Path, encoding: str) -> pl.DataFrame:
    raw = path.read_bytes()
    enc = encoding.lower().replace("_", "-")
    try:
        text, had_errors = raw.decode(enc), False
    except UnicodeDecodeError:
        text, had_errors = raw.decode(enc, errors="replace"), True
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    frame = pl.DataFrame({"raw": parts}, schema={"raw": pl.String}).with_row_index("line", offset=1)
    frame = frame.with_columns(
        pl.col("line").cast(pl.Int64), pl.col("raw").str.strip_suffix("\r")
    ).filter(pl.col("raw").str.strip_chars() != "")
    problem = pl.when(pl.col("raw").str.contains("\x00", literal=True)).then(pl.lit("bad encoding: NUL byte"))
    if had_errors:
        problem = problem.when(pl.col("raw").str.contains("\ufffd", literal=True)).then(
            pl.lit(f"bad encoding: not valid {encoding}")
        )
    if enc in ("latin-1", "iso-8859-1", "latin1"):
        # C1 control characters, or UTF-8 lead + continuation bytes read as Latin-1 ("Ã©" for "é")
        problem = problem.when(pl.col("raw").str.contains(r"[\x{80}-\x{9F}]|[\x{C2}-\x{F4}][\x{80}-\x{BF}]")).then(
            pl.lit("bad encoding: UTF-8 bytes or control characters, not ISO-8859-1 text")
        )
    return frame.with_columns(problem.otherwise(None).alias("encoding_problem"))


def _unquote(col: pl.Expr) -> pl.Expr:
    return (
        pl.when(col.str.starts_with('"'))
        .then(col.str.slice(1, col.str.len_chars() - 2).str.replace_all('""', '"', literal=True))
        .otherwise(col)
    )


def _rejects(rows: pl.DataFrame, path: Path, reason: pl.Expr) -> pl.DataFrame:
    return rows.select(
        pl.lit(str(path)).alias("file"),
        pl.col("line"),
        reason.alias("reason"),
        pl.col("raw"),
    ).cast(polars_schema(REJECTS))  # type: ignore[arg-type]
