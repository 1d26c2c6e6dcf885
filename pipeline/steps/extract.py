"""Step ``extract``: pull candidates and facts from each SPARQL source into the lake.

Writes ``lake/raw_triples/source=<src>/run_date=D/{candidates,facts}.parquet`` (the raw-triples
contract) with the run's summary (queries, retries, triples per relation, time) in the manifest.
Every query result is cached under ``$KGREC_HOME/cache/extract/source=<src>/run_date=D``, so a run
that was killed or ran out of budget continues where it stopped, and a re-run of the same date
rewrites the partition with identical content.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from kg_build import cache as cache_mod
from kg_build.cache import QueryCache
from kg_build.extract import Extractor, PullSettings
from kg_build.schema import RAW_TRIPLES
from kg_build.sources import Domain, SourceDefinition, load_definitions
from kg_build.sparql import ClientSettings, SparqlClient
from pipeline.lake import Lake, PartitionNotFound, run_date_key
from pipeline.settings import Settings, config_hash, is_loopback

log = logging.getLogger(__name__)
LABEL_NAME = "label"


class ExtractError(RuntimeError):
    """The stage cannot run as configured; the message says what to do."""


@dataclass(frozen=True)
class SourceResult:
    source: str
    path: str
    summary: dict[str, Any]

    def line(self) -> str:
        s = self.summary
        return (
            f"extract {self.source}: {s['candidates']:,} candidates ({s['candidate_triples']:,} triples), "
            f"facts for {s['fact_entities']:,} entities ({s['fact_triples']:,} triples); "
            f"{s['queries_sent']} queries sent, {s['cache_hits']} from cache, {s['retried']} retried, "
            f"{s['seconds']:.1f}s -> {self.path}"
        )


@dataclass(frozen=True)
class ExtractResult:
    sources: list[SourceResult] = field(default_factory=list)
    skipped: str | None = None  # why a step had nothing to do

    def summary(self) -> str:
        return self.skipped or "\n  ".join(r.line() for r in self.sources) or "extract: no sources configured"


def extract(settings: Settings, run_date: date) -> ExtractResult:
    """Candidates (and their facts, unless facts wait for the alignment) from every configured source."""
    facts = settings.extract.fact_entities == "candidates"
    return ExtractResult([extract_source(settings, run_date, name, facts=facts) for name in settings.sources])


def extract_facts(settings: Settings, run_date: date) -> ExtractResult:
    """Facts of the aligned items from every source, once ``align`` has run (``fact_entities = "aligned"``).

    With ``fact_entities`` ``candidates`` or ``none`` the ``extract`` step did all there is to do.
    """
    mode = settings.extract.fact_entities
    if mode != "aligned":
        why = "pulled with the candidates" if mode == "candidates" else "not wanted"
        result = ExtractResult([], skipped=f"extract_facts: nothing to do (extract.fact_entities = {mode!r}: "
                               f"facts {why})")
        log.info(result.skipped)
        return result
    return ExtractResult([
        extract_source(settings, run_date, name, candidates=False, facts=True) for name in settings.sources
    ])


def pull_candidates(
    settings: Settings, source: str, *, domain: str, endpoint: str | None, workdir: Path
) -> pl.DataFrame:
    """The candidate pull of one source on the spot (raw triples), for a standalone alignment."""
    definition, cfg_endpoint = source_definition(settings, source)
    dom = definition.domain(domain)
    client = _client(settings, endpoint or cfg_endpoint)
    try:
        client.check()
    except Exception as exc:
        raise ExtractError(f"{exc}: check the endpoint URL and that the server is up") from None
    extractor = Extractor(definition, dom, client, QueryCache(workdir), _pull_settings(settings))
    return extractor.candidate_triples(extractor.candidates())


def extract_source(
    settings: Settings,
    run_date: date,
    source: str,
    *,
    domain: str | None = None,
    endpoint: str | None = None,
    entities: list[str] | None = None,
    candidates: bool = True,
    facts: bool = True,
    lake_root: Path | None = None,
) -> SourceResult:
    """Pull from one source: candidates, then facts for ``entities`` (default: as configured).

    ``candidates=False`` or ``facts=False`` skips that pull and keeps the table the partition
    already has (the standalone command pulls one or the other).
    """
    began = time.monotonic()
    definition, cfg_endpoint = source_definition(settings, source)
    dom = definition.domain(domain or settings.extract.domain)
    endpoint = endpoint or cfg_endpoint
    client = _client(settings, endpoint)
    if is_loopback(endpoint):
        try:
            client.check()
        except Exception as exc:
            raise ExtractError(f"{exc}. Is the local mirror running? Start it with `kgrec mirror start`.") from None
    cache_root = settings.home / "cache" / "extract" / f"source={source}"
    cache_mod.prune(cache_root, run_date - timedelta(days=settings.extract.cache_days))
    cache = QueryCache(cache_root / f"run_date={run_date.isoformat()}")
    extractor = Extractor(definition, dom, client, cache, _pull_settings(settings))
    lake = Lake(lake_root or settings.lake_root)

    tables: dict[str, pl.DataFrame] = {}
    items: list[str] = []
    if candidates:
        items = extractor.candidates()
        log.info("%s: %d candidates", source, len(items))
        tables["candidates"] = extractor.candidate_triples(items)
    fact_entities: list[str] = []
    if facts:
        fact_entities = entities if entities is not None else _fact_entities(settings, lake, run_date, source, items)
        tables["facts"] = extractor.facts(fact_entities)

    summary = _summary(definition, dom, endpoint, client, extractor, tables, items, fact_entities, began)
    key = {"source": source, **run_date_key(run_date)}
    lake.write(
        "raw_triples", key, tables,
        config_hash=config_hash(settings.extract),
        inputs=[{"endpoint": endpoint, "domain": dom.name}],
        extra=summary,
        schemas={name: RAW_TRIPLES for name in tables},
        carry_over=[name for name, pulled in (("candidates", candidates), ("facts", facts)) if not pulled],
    )
    result = SourceResult(source, lake.partition_path("raw_triples", key), summary)
    log.info(result.line())
    return result


def source_definition(settings: Settings, source: str) -> tuple[SourceDefinition, str | None]:
    """The definition of a configured source (or of a defined one: wikidata, dbpedia) and its endpoint."""
    definitions = load_definitions(settings.extract.definitions)
    if source in settings.sources:
        cfg = settings.sources[source]
        return definitions[cfg.kind], cfg.endpoint
    if source in definitions:
        return definitions[source], None
    raise ExtractError(
        f"unknown source {source!r}: the profile has {', '.join(settings.sources)}; "
        f"the definitions have {', '.join(definitions)}"
    )


def _client(settings: Settings, endpoint: str | None) -> SparqlClient:
    if not endpoint:
        raise ExtractError("no endpoint: configure sources.<name>.endpoint (or a mirror), or pass --endpoint")
    x = settings.extract
    return SparqlClient(
        endpoint,
        user_agent=settings.user_agent,
        settings=ClientSettings(
            timeout_s=x.timeout_s, max_retries=x.max_retries, backoff_s=x.backoff_s, backoff_max_s=x.backoff_max_s,
            max_retry_after_s=x.max_retry_after_s, min_interval_s=x.min_interval_s, query_budget=x.query_budget,
        ),
        seed=settings.seed,
    )


def _pull_settings(settings: Settings) -> PullSettings:
    x = settings.extract
    return PullSettings(
        batch_size=x.batch_size, page_size=x.page_size, languages=tuple(x.languages), depth=x.depth,
        per_entity_cap=x.per_entity_cap, concurrency=x.concurrency,
    )


def _fact_entities(settings: Settings, lake: Lake, run_date: date, source: str, items: list[str]) -> list[str]:
    mode = settings.extract.fact_entities
    if mode == "candidates":
        return items
    if mode == "none":
        return []
    dates = [p for p in lake.partitions("alignment") if p.get("run_date", "") <= run_date.isoformat()]
    if not dates:
        raise ExtractError(
            f"extract.fact_entities is 'aligned' but the lake has no alignment up to {run_date}: "
            "run the alignment first, or set extract.fact_entities to 'candidates'"
        )
    try:
        links = lake.read("alignment", dates[-1], "links")
    except PartitionNotFound as exc:
        raise ExtractError(str(exc)) from None
    accepted = links.filter((pl.col("status") == "accepted") & (pl.col("source") == source))
    return sorted(set(accepted["entity_iri"].to_list()))


def _summary(
    definition: SourceDefinition, dom: Domain, endpoint: str, client: SparqlClient, extractor: Extractor,
    tables: dict[str, pl.DataFrame], items: list[str], fact_entities: list[str], began: float,
) -> dict[str, Any]:
    names = {definition.expand(t): n for n, t in dom.relations.items()}
    names |= {definition.expand(t): LABEL_NAME for t in definition.labels[:1]}
    by_relation: dict[str, int] = {}
    if "facts" in tables:
        counts = tables["facts"].group_by("predicate").len().iter_rows()
        by_relation = {names.get(p, p): n for p, n in sorted(counts)}
    c, x = client.stats, extractor.stats
    return {
        "domain": dom.name,
        "endpoint": endpoint,
        "candidates": len(items),
        "candidate_triples": tables["candidates"].height if "candidates" in tables else 0,
        "fact_entities": len(fact_entities),
        "fact_triples": tables["facts"].height if "facts" in tables else 0,
        "triples_by_relation": by_relation,
        "queries": x.queries,
        "queries_sent": c.sent,
        "cache_hits": x.cache_hits,
        "retried": c.retried,
        "failed": c.failed,
        "timeouts": c.timeouts,
        "retry_reasons": dict(c.by_reason),
        "waited_s": round(c.waited_s, 2),
        "batches_halved": x.halved,
        "results_truncated": x.truncated,
        "hubs_capped": x.hubs_capped,
        "blank_nodes_dropped": x.blank_nodes_dropped,
        "seconds": round(time.monotonic() - began, 2),
    }

