"""Step ``align``: link catalog items to the KG entities of every source, with a decision per link.

Reads ``lake/catalog/run_date=D/items.parquet`` and each source's
``lake/raw_triples/source=S/run_date=D/candidates.parquet``; writes ``lake/alignment/run_date=D/``:
``links.parquet`` (the links contract), ``details.parquet`` (names and runner-ups), and for people
``review.csv`` (the ambiguous links, in the overrides format), ``report.html`` and ``scores.png``.
The curated overrides (``align.overrides``, default ``$KGREC_HOME/alignment/overrides.csv``) live
outside the lake and are applied on every run, so a correction is never overwritten.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from kg_build.align.aligner import AlignConfig, AlignError, Alignment
from kg_build.align.aligner import align as align_items
from kg_build.align.cascade import DETAILS, LINKS, Thresholds
from kg_build.align.manual import read_overrides, review_table
from kg_build.align.report import render
from kg_build.catalog import Catalog
from kg_build.catalog.csv import load_csv
from kg_build.catalog.lastfm import load_lastfm
from kg_build.catalog.movielens import load_movielens, load_movielens_1m
from kg_build.sources import load_definitions
from pipeline.lake import Lake, PartitionNotFound, file_fingerprint, run_date_key
from pipeline.settings import Settings, config_hash
from pipeline.steps.extract import pull_candidates, source_definition
from pipeline.steps.ingest import report_rejects

log = logging.getLogger(__name__)
# --catalog-format of the standalone command -> loader of the catalog file (items only)
CATALOG_FORMATS = {
    "sample": load_csv,
    "csv": load_csv,
    "movielens": lambda p: load_movielens(p.parent, items_file=p.name, interactions=False),
    "movielens-1m": lambda p: load_movielens_1m(p.parent, items_file=p.name, interactions=False),
    "hetrec-artists": lambda p: load_lastfm(p.parent, items_file=p.name, interactions=False),
}


@dataclass(frozen=True)
class AlignResult:
    path: str
    alignments: list[Alignment]
    review_rows: int

    def summary(self) -> str:
        lines = [a.summary() for a in self.alignments]
        lines.append(f"align: {self.review_rows:,} ambiguous links to review -> {self.path}")
        return "\n  ".join(lines)


def align(settings: Settings, run_date: date) -> AlignResult:
    """Align the run date's catalog to every configured source (the pipeline's ``align`` step)."""
    lake = Lake(settings.lake_root)
    key = run_date_key(run_date)
    try:
        items = lake.read("catalog", key, "items")
    except PartitionNotFound:
        raise AlignError(
            f"the lake has no catalog for {run_date}: run `kgrec ingest --date {run_date}` first"
        ) from None
    overrides = read_overrides(settings.overrides_path)
    config = align_config(settings)
    definitions = load_definitions(settings.extract.definitions)
    alignments = []
    for name, src in settings.sources.items():
        try:
            candidates = lake.read("raw_triples", {"source": name, **key}, "candidates")
        except PartitionNotFound:
            raise AlignError(
                f"the lake has no {name} candidates for {run_date}: run `kgrec extract --date {run_date}` first"
            ) from None
        alignments.append(align_items(
            items, candidates, definition=definitions[src.kind], domain=settings.extract.domain, config=config,
            overrides=overrides,
        ))
    tables, attachments = _outputs(alignments, settings, f"Alignment {run_date} ({settings.profile})", "scores.png")
    inputs = [file_fingerprint(settings.overrides_path)] if settings.overrides_path.is_file() else []
    lake.write(
        "alignment", key, tables, attachments=attachments, config_hash=config_hash(settings.align), inputs=inputs,
        extra={"summary": {a.source: {**a.counts(), "candidates": a.candidates} for a in alignments},
               "seconds": {a.source: {k: round(v, 2) for k, v in a.timings.items()} for a in alignments}},
        schemas={"links": _arrow(LINKS)},
    )
    result = AlignResult(lake.partition_path("alignment", key), alignments, _review_rows(tables))
    log.info(result.summary())
    return result


def align_catalog(
    settings: Settings,
    *,
    catalog: Path,
    catalog_format: str,
    source: str,
    domain: str,
    out: Path,
    endpoint: str | None = None,
    exact_id: bool = True,
    overrides: Path | None = None,
) -> AlignResult:
    """The standalone command: a catalog file against candidates pulled now from ``endpoint``.

    Writes ``out`` (links contract plus details) and, beside it, ``<stem>.review.csv``,
    ``<stem>.report.html`` and ``<stem>.scores.png``; all or nothing.
    """
    items = _catalog_items(catalog, catalog_format)
    definition, _ = source_definition(settings, source)
    definition.domain(domain)
    if overrides and not overrides.is_file():
        raise AlignError(f"overrides file {overrides} does not exist")
    table = read_overrides(overrides) if overrides else None
    with tempfile.TemporaryDirectory(prefix="kgrec-align-") as workdir:
        candidates = pull_candidates(settings, source, domain=domain, endpoint=endpoint, workdir=Path(workdir))
    matchers = [m for m in settings.align.matchers if exact_id or m != "exact_id"]
    alignment = align_items(items, candidates, definition=definition, domain=domain,
                            config=align_config(settings, matchers), overrides=table)
    stem = out.name.removesuffix(".parquet")
    png_name = f"{stem}.scores.png"
    tables, attachments = _outputs([alignment], settings, f"Alignment of {catalog.name} to {definition.name}", png_name)
    files = {
        out: lambda p: tables["links"].hstack(tables["details"].drop("item_id", "source")).write_parquet(p),
        out.with_name(f"{stem}.review.csv"): lambda p: p.write_bytes(attachments["review.csv"]),
        out.with_name(f"{stem}.report.html"): lambda p: p.write_bytes(attachments["report.html"]),
        out.with_name(png_name): lambda p: p.write_bytes(attachments["scores.png"]),
    }
    _write_all(files)
    result = AlignResult(str(out), [alignment], _review_rows(tables))
    log.info(result.summary())
    return result


def align_config(settings: Settings, matchers: list[str] | None = None) -> AlignConfig:
    a = settings.align
    return AlignConfig(
        matchers=tuple(matchers if matchers is not None else a.matchers),
        thresholds=Thresholds(accept=a.accept, review=a.review, min_margin=a.min_margin),
        year_tolerance=a.year_tolerance, fuzzy_scorer=a.fuzzy_scorer, fuzzy_cutoff=a.fuzzy_cutoff,
        embedding_cutoff=a.embedding_cutoff, top_k=a.top_k, device=settings.device,
        cache_dir=settings.home / "cache" / "embeddings",
    )


def _catalog_items(path: Path, catalog_format: str) -> pl.DataFrame:
    if catalog_format not in CATALOG_FORMATS:
        raise AlignError(f"unknown catalog format {catalog_format!r}: choose one of {', '.join(CATALOG_FORMATS)}")
    if path.is_dir():
        raise AlignError(f"--catalog {path} is a folder: give the catalog file itself (movies.csv, artists.dat, ...)")
    catalog: Catalog = CATALOG_FORMATS[catalog_format](path)
    dupes = catalog.rejects.filter(pl.col("reason").str.starts_with("duplicate"))
    if dupes.height:
        where = "; ".join(f"{r['file']}:{r['line']}: {r['reason']}" for r in dupes.head(5).iter_rows(named=True))
        raise AlignError(f"the catalog has {dupes.height} duplicate item id(s), so links would be ambiguous: {where}")
    report_rejects(catalog)
    if catalog.items.is_empty():
        quarantined = f" ({catalog.rejects.height} rows quarantined, see above)" if catalog.rejects.height else ""
        raise AlignError(f"{path}: the catalog has no usable items{quarantined}")
    return catalog.items


def _outputs(
    alignments: list[Alignment], settings: Settings, title: str, png_name: str
) -> tuple[dict[str, pl.DataFrame], dict[str, bytes]]:
    links = pl.concat([a.links for a in alignments])
    report = render(links, title=title, timings={a.source: a.timings for a in alignments}, png_name=png_name,
                    accept=settings.align.accept, review=settings.align.review)
    tables = {"links": links.select(list(LINKS)), "details": links.select("item_id", "source", *DETAILS)}
    attachments = {
        "review.csv": review_table(links).write_csv().encode(),
        "report.html": report.html.encode(),
        "scores.png": report.png,
    }
    return tables, attachments


def _review_rows(tables: dict[str, pl.DataFrame]) -> int:
    return tables["links"].filter(pl.col("status") == "ambiguous").height


def _arrow(schema: dict[str, pl.DataType]):  # noqa: ANN202 - a pyarrow schema
    return pl.DataFrame(schema=schema).to_arrow().schema


def _write_all(files: dict[Path, object]) -> None:
    """Write every file to a temporary sibling, then rename them all into place (nothing half-written)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            write(tmp)  # type: ignore[operator]
            staged.append((tmp, path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
