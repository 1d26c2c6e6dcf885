"""Align a catalog to one source's candidates: build both sides, run the cascade, apply the overrides.

The entry point of alignment for the pipeline step and the standalone command alike::

    alignment = align(items, candidate_triples, definition=wikidata, domain="films", config=AlignConfig())
    alignment.links  # one row per item: LINKS + DETAILS columns (see kg_build.align.cascade)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from kg_build.align.base import Matcher, Side
from kg_build.align.cascade import DETAILS, LINKS, Cascade, Thresholds
from kg_build.align.embedding import EmbeddingMatch, Encoder
from kg_build.align.exact import ExactId, ExactLabel
from kg_build.align.fuzzy import SCORERS, FuzzyMatch
from kg_build.align.manual import manual_links, overrides_for
from kg_build.align.names import entity_names, item_names
from kg_build.sources import SourceDefinition

log = logging.getLogger(__name__)
MATCHERS = ("exact_id", "exact_label", "fuzzy", "embedding")


class AlignError(ValueError):
    """Input alignment cannot use (no items, duplicate ids, no candidates); the message says which."""


@dataclass(frozen=True)
class AlignConfig:
    """How to align; the pipeline builds it from the ``[align]`` settings."""

    matchers: tuple[str, ...] = MATCHERS
    thresholds: Thresholds = Thresholds()
    year_tolerance: int = 1
    fuzzy_scorer: str = "token_sort_ratio"
    fuzzy_cutoff: float = 0.85
    embedding_cutoff: float = 0.85
    top_k: int = 10
    device: str = "cpu"
    cache_dir: Path | None = None  # embedding vectors, reused across runs

    def __post_init__(self) -> None:
        unknown = [m for m in self.matchers if m not in MATCHERS]
        if unknown:
            raise AlignError(f"unknown matchers {', '.join(unknown)}: choose from {', '.join(MATCHERS)}")
        if self.fuzzy_scorer not in SCORERS:
            raise AlignError(f"unknown fuzzy scorer {self.fuzzy_scorer!r}: choose one of {', '.join(SCORERS)}")


@dataclass(frozen=True)
class Alignment:
    source: str
    links: pl.DataFrame  # LINKS + DETAILS
    timings: dict[str, float] = field(default_factory=dict)
    candidates: int = 0
    nameless_items: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(sorted(self.links.group_by("status").len().iter_rows()))

    def summary(self) -> str:
        c = self.counts()
        by_method = self.links.filter(pl.col("status") == "accepted").group_by("method").len().sort("method")
        methods = ", ".join(f"{m} {n:,}" for m, n in by_method.iter_rows())
        return (
            f"align {self.source}: {self.links.height:,} items against {self.candidates:,} candidates: "
            f"{c.get('accepted', 0):,} accepted ({methods or 'none'}), {c.get('ambiguous', 0):,} ambiguous, "
            f"{c.get('unmatched', 0):,} unmatched; {self.timings.get('total', 0.0):.1f}s"
        )


def align(
    items: pl.DataFrame,
    candidate_triples: pl.DataFrame,
    *,
    definition: SourceDefinition,
    domain: str,
    config: AlignConfig = AlignConfig(),
    overrides: pl.DataFrame | None = None,
    encoder: Encoder | None = None,
) -> Alignment:
    """Link each item (``item_id``, ``title``, optional ``year``, ``imdb_id``) to at most one candidate."""
    began = time.perf_counter()
    check_items(items)
    item_side = items_side(items)
    entity_side = entities_side(candidate_triples, definition, domain)
    n_candidates = entity_side.names["id"].n_unique()
    if n_candidates == 0:
        raise AlignError(
            f"source {definition.name} has no {domain} candidates with a label: check the endpoint and the "
            "domain, and that the candidate pull ran (kgrec extract)"
        )
    nameless = items.join(item_side.names, left_on="item_id", right_on="id", how="anti")["item_id"].sort().to_list()
    if nameless:
        log.warning("%d items have no usable title (empty or only punctuation), left unmatched: %s",
                    len(nameless), ", ".join(nameless[:10]) + (" ..." if len(nameless) > 10 else ""))
    # A person's overrides decide their items first; the cascade never sees those items or entities.
    manual = overrides_for(overrides, definition.name, items["item_id"], entity_side)
    item_ids = items.filter(~pl.col("item_id").is_in(manual["item_id"].implode()))["item_id"].to_list()
    cascade = Cascade(build_matchers(config, encoder), config.thresholds)
    links = cascade.run(item_side, entity_side.without(manual["entity_iri"].drop_nulls().to_list()), item_ids,
                        definition.name)
    links = pl.concat([links, manual_links(manual, item_side, entity_side, definition.name)], how="vertical_relaxed")
    links = links.sort("item_id").select(list(LINKS) + list(DETAILS)).cast(LINKS | DETAILS)  # type: ignore[arg-type]
    timings = dict(cascade.timings)
    timings["total"] = time.perf_counter() - began
    return Alignment(definition.name, links, timings, n_candidates, nameless)


def check_items(items: pl.DataFrame) -> None:
    missing = [c for c in ("item_id", "title") if c not in items.columns]
    if missing:
        raise AlignError(f"catalog items lack the column(s) {', '.join(missing)}")
    if items.is_empty():
        raise AlignError("the catalog has no items: nothing to align")
    dupes = items.filter(pl.col("item_id").is_duplicated())["item_id"].unique().sort().to_list()
    if dupes:
        raise AlignError(
            f"{len(dupes)} item ids appear more than once ({', '.join(dupes[:10])}"
            f"{' ...' if len(dupes) > 10 else ''}): links are keyed by item id, so ids must be unique"
        )


def items_side(items: pl.DataFrame) -> Side:
    ids = pl.DataFrame(schema={"id": pl.String, "id_name": pl.String, "value": pl.String})
    if "imdb_id" in items.columns:
        ids = items.filter(pl.col("imdb_id").is_not_null()).select(
            pl.col("item_id").alias("id"), pl.lit("imdb_id").alias("id_name"), pl.col("imdb_id").alias("value")
        )
    return Side(item_names(items), ids)


def entities_side(candidate_triples: pl.DataFrame, definition: SourceDefinition, domain: str) -> Side:
    """Candidate names, years and external ids; names whose disambiguator names another kind are dropped."""
    dom = definition.domain(domain)
    found = entity_names(
        candidate_triples,
        labels=[definition.expand(t) for t in definition.labels],
        years=[definition.expand(t) for t in dom.years],
        external_ids={name: definition.expand(t) for name, t in dom.external_ids.items()},
    )
    names = found.names
    if dom.kinds:
        foreign = pl.col("kind").is_not_null() & ~pl.col("kind").is_in(list(dom.kinds))
        dropped = names.filter(foreign)
        if dropped.height:
            log.info("%s: %d candidate names are of another kind than %s (e.g. %s), not aligned",
                     definition.name, dropped.height, "/".join(dom.kinds), dropped["name"][0])
        names = names.filter(~foreign)
    return Side(names, found.ids)


def build_matchers(config: AlignConfig, encoder: Encoder | None) -> list[Matcher]:
    """The configured matchers, in cascade order."""
    tol = config.year_tolerance
    made: dict[str, Matcher] = {
        "exact_id": ExactId(),
        "exact_label": ExactLabel(year_tolerance=tol),
        "fuzzy": FuzzyMatch(scorer=config.fuzzy_scorer, cutoff=config.fuzzy_cutoff, year_tolerance=tol),
    }
    if "embedding" in config.matchers:
        made["embedding"] = EmbeddingMatch(
            encoder=encoder or Encoder(device=config.device, cache_dir=config.cache_dir),
            cutoff=config.embedding_cutoff, top_k=config.top_k, year_tolerance=tol,
        )
    return [made[m] for m in MATCHERS if m in config.matchers]
