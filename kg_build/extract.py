"""Candidate and fact pulls over SPARQL, as raw triples.

- **Candidate pull**: every entity that satisfies one of the domain's candidate rules (paged with
  ORDER BY + LIMIT/OFFSET), then their labels, years and external ids.
- **Fact pull**: for given entities, every whitelisted relation out of them; optionally a second
  hop out of the objects, where a hub (more than ``per_entity_cap`` statements, counted first) is
  pulled only up to the cap; then the labels of every subject and object.

Subjects go in ``VALUES`` batches (``batch_size``), one query per batch and page, never one per
entity. A page as long as its LIMIT, or a result the server says it capped (``X-SPARQL-MaxRows``),
is followed by the next page. A batch that times out is split in halves, down to single entities.
Every result goes through the on-disk :class:`~kg_build.cache.QueryCache`, so a re-run sends only
what is missing. Output rows follow ``schema.RAW_TRIPLES``, deduplicated and sorted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from kg_build import query as q
from kg_build.cache import QueryCache
from kg_build.progress import Progress
from kg_build.schema import RAW_TRIPLES, empty, polars_schema
from kg_build.sources import Domain, SourceDefinition
from kg_build.sparql import QueryTimeout, Result, SparqlClient

_TERM = pl.Struct({"type": pl.String, "value": pl.String, "xml:lang": pl.String, "datatype": pl.String})
_BINDINGS = {"s": _TERM, "p": _TERM, "o": _TERM}
KEY = ["subject", "predicate", "object", "object_kind", "lang", "datatype"]


@dataclass(frozen=True)
class PullSettings:
    batch_size: int = 200
    page_size: int = 10_000
    languages: tuple[str, ...] = ("en",)
    depth: int = 1
    per_entity_cap: int = 100
    concurrency: int = 1


@dataclass
class PullStats:
    queries: int = 0  # queries needed, from the cache or the endpoint
    cache_hits: int = 0
    halved: int = 0  # batches split after a timeout
    truncated: int = 0  # results the server capped, followed by more pages
    hubs_capped: int = 0
    blank_nodes_dropped: int = 0


class Extractor:
    """Pulls from one source for one domain through a client and a cache."""

    def __init__(
        self,
        source: SourceDefinition,
        domain: Domain,
        client: SparqlClient,
        cache: QueryCache,
        settings: PullSettings = PullSettings(),
    ) -> None:
        if not 1 <= settings.depth <= 2:
            raise ValueError(f"depth must be 1 or 2, got {settings.depth}")
        self.source, self.domain, self.client, self.cache, self.settings = source, domain, client, cache, settings
        self.stats = PullStats()
        self._lock = threading.Lock()  # batches may run in worker threads (concurrency > 1)
        self._prefixes = q.prefix_block(source.prefixes)
        self._filter = q.language_filter("o", settings.languages)

    # -- candidate pull --------------------------------------------------------------------
    def candidates(self) -> list[str]:
        """IRIs of every entity of the domain's item class, sorted."""
        rules = q.candidate_rules(
            [{"path": r.path, "object": r.object or ""} for r in self.domain.candidates], self.source.prefixes
        )
        items: list[str] = []
        offset, page = 0, self.settings.page_size
        progress = Progress(None, f"{self.source.name} candidates", unit="page")
        while True:
            query = q.render("candidates", prefixes=self._prefixes, rules=rules, limit=page, offset=offset)
            result, _ = self._run(query, retry_timeouts=True)
            page_items = [b["item"]["value"] for b in result.bindings if b.get("item", {}).get("type") == "uri"]
            items.extend(page_items)
            progress.update(1, items=len(page_items))
            more, page = self._more(len(result.bindings), page, result.max_rows)
            if not more:
                break
            offset += len(result.bindings)
        progress.close()
        return sorted(set(items))

    def candidate_triples(self, items: Sequence[str]) -> pl.DataFrame:
        """Labels, alternative labels, years and external ids of ``items``."""
        predicates = [*self.source.labels, *self.domain.attribute_terms]
        return self._combine([self._triples(items, predicates, "candidate attributes")])

    # -- fact pull -------------------------------------------------------------------------
    def facts(self, entities: Sequence[str]) -> pl.DataFrame:
        """Whitelisted relations out of ``entities`` (and their objects at depth 2), plus labels."""
        relations = list(self.domain.relations.values())
        frames = [self._triples(entities, relations, "facts")]
        subjects = set(entities)
        objects = _iri_objects(frames[0])
        if self.settings.depth == 2:
            frontier = sorted(objects - subjects)
            frames.append(self._capped(frontier, relations))
            subjects |= set(frontier)
            objects |= _iri_objects(frames[-1])
        frames.append(self._triples(sorted(subjects | objects), [self.source.labels[0]], "labels"))
        return self._combine(frames)

    # -- batches, pages, halving -----------------------------------------------------------
    def _triples(self, subjects: Sequence[str], predicates: Sequence[str], what: str) -> pl.DataFrame:
        size = self.settings.batch_size
        batches = [list(subjects[i : i + size]) for i in range(0, len(subjects), size)]
        preds = q.property_patterns(predicates, self.source.prefixes)
        progress = Progress(len(batches), f"{self.source.name} {what}", unit="batch")

        def run(batch: list[str]) -> pl.DataFrame:
            frame = self._batch(batch, preds)
            progress.update(1, triples=frame.height)
            return frame

        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            frames = list(pool.map(run, batches))
        progress.close()
        return pl.concat(frames) if frames else empty(RAW_TRIPLES)

    def _batch(self, subjects: list[str], predicates: q.Fragment) -> pl.DataFrame:
        try:
            return self._pages(subjects, predicates, retry_timeouts=len(subjects) == 1)
        except QueryTimeout:
            self._count("halved")
            mid = len(subjects) // 2
            return pl.concat([self._batch(subjects[:mid], predicates), self._batch(subjects[mid:], predicates)])

    def _pages(
        self, subjects: list[str], predicates: q.Fragment, *, retry_timeouts: bool, limit: int | None = None
    ) -> pl.DataFrame:
        """Every page of the triples query for one batch; only the first ``limit`` rows when given."""
        values = q.iri_list(subjects)
        frames = []
        offset, page = 0, limit or self.settings.page_size
        while True:
            query = q.render(
                "triples", prefixes=self._prefixes, subjects=values, patterns=predicates,
                filter=self._filter, limit=page, offset=offset,
            )
            result, key = self._run(query, retry_timeouts=retry_timeouts)
            frames.append(self._frame(result, key))
            more, page = self._more(len(result.bindings), page, result.max_rows)
            if limit is not None or not more:
                return pl.concat(frames)
            offset += len(result.bindings)

    def _more(self, rows: int, page: int, max_rows: int | None) -> tuple[bool, int]:
        """Is there another page, and how long may it be? (A capped result shrinks the page.)"""
        if max_rows is not None and rows >= max_rows and rows > 0:
            self._count("truncated")
            return True, min(page, rows)
        return rows == page and rows > 0, page

    def _capped(self, subjects: list[str], predicates: Sequence[str]) -> pl.DataFrame:
        """Second hop: count each subject's statements first; pull hubs only up to the cap."""
        cap = self.settings.per_entity_cap
        counts = self._counts(subjects, predicates)
        small = [s for s in subjects if 0 < counts.get(s, 0) <= cap]
        hubs = [s for s in subjects if counts.get(s, 0) > cap]
        self._count("hubs_capped", len(hubs))
        preds = q.property_patterns(predicates, self.source.prefixes)
        frames = [self._triples(small, predicates, "facts hop 2")]
        frames += [self._pages([hub], preds, retry_timeouts=True, limit=cap) for hub in hubs]
        return pl.concat(frames)

    def _counts(self, subjects: list[str], predicates: Sequence[str]) -> dict[str, int]:
        preds = q.property_patterns(predicates, self.source.prefixes)
        counts: dict[str, int] = {}
        size = self.settings.batch_size
        for i in range(0, len(subjects), size):
            query = q.render(
                "counts", prefixes=self._prefixes, subjects=q.iri_list(subjects[i : i + size]),
                patterns=preds, filter=self._filter,
            )
            result, _ = self._run(query, retry_timeouts=True)
            counts |= {b["s"]["value"]: int(b["n"]["value"]) for b in result.bindings}
        return counts

    # -- cache and rows --------------------------------------------------------------------
    def _run(self, query: str, *, retry_timeouts: bool) -> tuple[Result, str]:
        key = q.query_hash(self.client.endpoint, query)
        self._count("queries")
        cached = self.cache.get(key)
        if cached is not None:
            self._count("cache_hits")
            return cached, key
        result = self.client.select(query, retry_timeouts=retry_timeouts)
        self.cache.put(key, result)
        return result, key

    def _frame(self, result: Result, key: str) -> pl.DataFrame:
        if not result.bindings:
            return empty(RAW_TRIPLES)
        terms = pl.DataFrame(result.bindings, schema=_BINDINGS)
        o_type = pl.col("o").struct.field("type")
        kind = pl.when(o_type == "uri").then(pl.lit("iri")).when(o_type.is_in(["literal", "typed-literal"]))
        frame = terms.select(
            pl.col("s").struct.field("value").alias("subject"),
            pl.col("p").struct.field("value").alias("predicate"),
            pl.col("o").struct.field("value").alias("object"),
            kind.then(pl.lit("literal")).otherwise(None).alias("object_kind"),
            pl.col("o").struct.field("xml:lang").alias("lang"),
            pl.col("o").struct.field("datatype").alias("datatype"),
            pl.lit(self.source.name).alias("source"),
            pl.lit(key).alias("query_hash"),
            pl.lit(result.fetched_at).dt.cast_time_unit("us").alias("fetched_at"),
            (pl.col("s").struct.field("type") == "uri").alias("_subject_ok"),
        )
        kept = frame.filter(pl.col("object_kind").is_not_null() & pl.col("_subject_ok")).drop("_subject_ok")
        self._count("blank_nodes_dropped", frame.height - kept.height)
        return kept.cast(polars_schema(RAW_TRIPLES))  # type: ignore[arg-type]

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def _combine(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        """One row per distinct statement (the first query that returned it), sorted."""
        frame = pl.concat(frames).sort([*KEY, "query_hash"], nulls_last=True)
        return frame.unique(subset=KEY, keep="first", maintain_order=True)


def read_entity_file(path: Path) -> list[str]:
    """IRIs, one per line (blank lines and ``#`` comments skipped); errors name the file and line."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    iris, bad = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        text = text.removeprefix("<").removesuffix(">")
        (iris if q.is_valid_iri(text) else bad).append(text if q.is_valid_iri(text) else f"{path}:{number}: {text!r}")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(f"not valid IRIs:\n  {shown}")
    return sorted(set(iris))


def _iri_objects(frame: pl.DataFrame) -> set[str]:
    return set(frame.filter(pl.col("object_kind") == "iri")["object"].to_list())
