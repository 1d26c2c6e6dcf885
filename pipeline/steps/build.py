"""Step ``build``: assemble the KG of one run date into a new version, ``lake/kg/version=N/``.

Reads the run date's ``catalog`` (items), ``interactions``, ``alignment`` (links) and every source's
``raw_triples`` facts; updates the append-only vocabularies in ``lake/vocab/``; writes
``entities, relations, triples, item_entity, users, interactions, splits`` with a manifest holding
the counts (overall and per relation), the alignment coverage, the sources with their run dates and
the upstream partitions with their file hashes (lineage). Nothing is published here: ``validate``
checks the version and ``publish`` moves ``_CURRENT``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from kg_build.assemble import AssemblyConfig, assemble
from kg_build.collaborative import collaborative
from kg_build.schema import RAW_TRIPLES, empty
from kg_build.sources import load_definitions
from kg_build.splits import SplitConfig
from kg_build.tables import KG
from kg_build.vocab import VocabularyStore
from pipeline import kg_store
from pipeline.lake import (
    Lake,
    LakeError,
    PartitionNotFound,
    partition_name,
    run_date_key,
)
from pipeline.settings import Settings, config_hash

log = logging.getLogger(__name__)
FACT_COLUMNS = ["subject", "predicate", "object", "object_kind", "lang", "datatype"]


@dataclass(frozen=True)
class BuildResult:
    version: int
    path: str
    counts: dict[str, int]
    coverage: float
    seconds: float

    def summary(self) -> str:
        c = self.counts
        return (
            f"build: KG version {self.version}: {c['entities']:,} entities ({c['entities_retired']:,} retired), "
            f"{c['relations']:,} relations, {c['triples']:,} triples; {c['items']:,} items "
            f"({self.coverage:.1%} aligned), {c['users']:,} users, {c['interactions']:,} interactions "
            f"in {self.seconds:.1f}s -> {self.path}"
        )


def build(settings: Settings, run_date: date) -> BuildResult:
    """Build the run date's KG as a new (unpublished) version."""
    began = time.monotonic()
    lake = Lake(settings.lake_root)
    day = run_date_key(run_date)
    inputs: list[dict[str, Any]] = []

    def read(dataset: str, partition: dict[str, str], table: str, make: str) -> pl.DataFrame:
        try:
            frame = lake.read(dataset, partition, table)
        except PartitionNotFound:
            raise LakeError(f"build: the lake has no {dataset}/{partition_name(partition)}: "
                            f"run `kgrec {make} --date {run_date}` first") from None
        manifest = lake.manifest(dataset, partition)
        inputs.append({"dataset": dataset, "partition": partition_name(partition), "table": table,
                       "rows": frame.height, "sha256": manifest.files[table].sha256,
                       "created_at": manifest.created_at})
        return frame

    items = read("catalog", day, "items", "ingest")
    interactions = read("interactions", day, "interactions", "ingest")
    links = read("alignment", day, "links", "align")
    facts, sources = _facts(settings, lake, run_date, inputs)
    definitions = load_definitions(settings.extract.definitions)
    relation_names: dict[str, str] = {}
    label_predicates: list[str] = []
    for src in settings.sources.values():
        definition = definitions[src.kind]
        domain = definition.domain(settings.extract.domain)
        relation_names |= {definition.expand(term): name for name, term in domain.relations.items()}
        label_predicates += [definition.expand(term) for term in definition.labels]

    store = VocabularyStore(settings.lake_root)

    def vocab(name: str, keys: pl.Series) -> pl.DataFrame:
        return store.update(name, keys, run_date)

    kg_cfg = settings.kg
    item_kg = assemble(
        items, links, facts, relation_names=relation_names, label_predicates=sorted(set(label_predicates)),
        source_order=list(settings.sources), vocab=vocab,
        config=AssemblyConfig(
            inverse_relations=kg_cfg.inverse_relations, year_bucket=kg_cfg.year_bucket,
            min_tail_degree=kg_cfg.min_tail_degree, max_tail_degree=kg_cfg.max_tail_degree,
            hops=settings.extract.depth, languages=tuple(settings.extract.languages),
        ),
    )
    log.info("build: item KG of %d triples assembled in %.1fs", item_kg.triples.height, time.monotonic() - began)
    collab = collaborative(
        interactions, item_kg.item_entity, threshold=kg_cfg.implicit_threshold, vocab=vocab,
        split_config=SplitConfig(valid=kg_cfg.valid, test=kg_cfg.test, cold_items=kg_cfg.cold_items,
                                 temporal=kg_cfg.temporal, seed=settings.seed),
    )
    kg = KG(entities=item_kg.entities, relations=item_kg.relations, triples=item_kg.triples,
            item_entity=item_kg.item_entity, users=collab.users, interactions=collab.interactions,
            splits=collab.splits)
    counts = kg.counts()
    seconds = round(time.monotonic() - began, 2)
    unchanged = _published_twin(lake, run_date, kg)
    if unchanged is not None:  # a re-run or backfill of the published night that found nothing new
        result = BuildResult(unchanged, lake.partition_path(kg_store.DATASET, kg_store.key(unchanged)), counts,
                             float(kg_store.manifest(lake, unchanged).extra["alignment"]["coverage"]), seconds)
        log.info("build: the KG of %s equals the published version %d built for that date: kept it, wrote "
                 "nothing", run_date, unchanged)
        return result
    version = kg_store.version_to_build(lake, run_date)
    lake.write(
        kg_store.DATASET, kg_store.key(version), kg.tables(),
        config_hash=config_hash(settings.kg), inputs=inputs,
        extra={
            "run_date": run_date.isoformat(),
            "profile": settings.profile,
            "counts": counts,
            "triples_by_relation": kg.triples_by_relation(),
            "alignment": item_kg.stats.pop("alignment"),
            "sources": sources,
            "assembly": item_kg.stats,
            "interactions": collab.stats,
            "seconds": seconds,
        },
    )
    result = BuildResult(version, lake.partition_path(kg_store.DATASET, kg_store.key(version)), counts,
                         float(kg_store.manifest(lake, version).extra["alignment"]["coverage"]), seconds)
    log.info(result.summary())
    return result


def _published_twin(lake: Lake, run_date: date, kg: KG) -> int | None:
    """The published version, when it was built for ``run_date`` and holds exactly these tables."""
    version = kg_store.built_for(lake, run_date)
    if version is None or version != kg_store.published(lake):
        return None
    stored = kg_store.read(lake, version).tables()
    return version if all(stored[name].equals(frame) for name, frame in kg.tables().items()) else None


def _facts(
    settings: Settings, lake: Lake, run_date: date, lineage: list[dict[str, Any]]
) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """A lazy scan of every source's facts of the run date, and where and when each source was read."""
    frames, sources = [], {}
    for name in settings.sources:
        partition = {"source": name, **run_date_key(run_date)}
        manifest = _manifest_or_fail(lake, partition, run_date)
        if "facts" in manifest.files:
            frames.append(lake.scan("raw_triples", partition, "facts").select(FACT_COLUMNS))
            entry = manifest.files["facts"]
            lineage.append({"dataset": "raw_triples", "partition": partition_name(partition), "table": "facts",
                            "rows": entry.rows, "sha256": entry.sha256, "created_at": manifest.created_at})
        elif settings.extract.fact_entities != "none":
            raise LakeError(f"build: raw_triples/{partition_name(partition)} has no facts: run "
                            f"`kgrec extract_facts --date {run_date}` first")
        sources[name] = {"run_date": run_date.isoformat(), "extracted_at": manifest.created_at,
                         "endpoint": manifest.extra.get("endpoint"), "domain": manifest.extra.get("domain"),
                         "fact_triples": manifest.files["facts"].rows if "facts" in manifest.files else 0}
    facts = pl.concat(frames) if frames else empty(RAW_TRIPLES).lazy().select(FACT_COLUMNS)
    return facts, sources


def _manifest_or_fail(lake: Lake, partition: dict[str, str], run_date: date):  # noqa: ANN202
    try:
        return lake.manifest("raw_triples", partition)
    except PartitionNotFound:
        raise LakeError(f"build: the lake has no raw_triples/{partition_name(partition)}: "
                        f"run `kgrec extract --date {run_date}` first") from None
