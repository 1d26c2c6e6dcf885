"""Assemble the item KG: raw triples + accepted links + the catalog -> entities, relations, triples, item_entity.

- **Items are entities, one each.** Every catalog item is the entity ``urn:kgrec:item:<item_id>``,
  aligned or not (an unaligned item has no facts, so cold-start behaviour can be measured). Its
  facts are those of the IRIs it is linked to in every source (Wikidata and DBpedia facts land on
  the same item entity); its ``iri`` column shows the link of the first source. Keying items by the
  catalog id keeps their entity id when a link is corrected.
- **Triples** are the IRI-valued facts reachable from the items in ``hops`` steps, deduplicated,
  without self loops. Literals become entities where they help: dates turn into year buckets
  (``urn:kgrec:year:1990-1999``, ``year_bucket`` years wide; the earliest date per item and
  property); labels name entities; every other literal is dropped (and counted).
- **Degree filters** on attribute tails: drop tails with fewer than ``min_tail_degree`` triples; a
  hub with more than ``max_tail_degree`` keeps that many, those of the smallest head keys (a
  deterministic choice). Then triples no longer reachable from an item go too.
- **Inverse relations** (``inverse_relations``): each relation's inverse is its own relation, keyed
  ``^<iri>`` (SPARQL's inverse path), with ``inverse_of`` pointing at the forward one.
- **Stable ids** come from ``vocab(name, keys)``, an append-only vocabulary (:mod:`kg_build.vocab`):
  entities by key (item URN or IRI), relations by IRI, items by catalog id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

ITEM_PREFIX = "urn:kgrec:item:"
YEAR_PREFIX = "urn:kgrec:year:"
INVERSE = "^"
XSD = "http://www.w3.org/2001/XMLSchema#"
DATE_TYPES = [f"{XSD}{t}" for t in ("date", "dateTime", "dateTimeStamp", "gYear", "gYearMonth")]

Vocab = Callable[[str, pl.Series], pl.DataFrame]


@dataclass(frozen=True)
class AssemblyConfig:
    inverse_relations: bool = False
    year_bucket: int = 10
    min_tail_degree: int = 1
    max_tail_degree: int | None = None
    hops: int = 1
    languages: tuple[str, ...] = ("en",)

    def __post_init__(self) -> None:
        if self.year_bucket < 0 or self.min_tail_degree < 1 or self.hops < 1:
            raise ValueError(f"bad assembly config {self}: year_bucket >= 0, min_tail_degree >= 1, hops >= 1")
        if self.max_tail_degree is not None and self.max_tail_degree < 1:
            raise ValueError(f"max_tail_degree must be at least 1, got {self.max_tail_degree}")


@dataclass(frozen=True)
class ItemKG:
    entities: pl.DataFrame
    relations: pl.DataFrame
    triples: pl.DataFrame
    item_entity: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def assemble(
    items: pl.DataFrame,
    links: pl.DataFrame,
    facts: pl.DataFrame | pl.LazyFrame,
    *,
    relation_names: Mapping[str, str],
    label_predicates: list[str],
    source_order: list[str],
    config: AssemblyConfig,
    vocab: Vocab,
) -> ItemKG:
    """The item KG of ``items`` (catalog), ``links`` (alignment) and ``facts`` (raw triples, all sources).

    ``facts`` may be a lazy scan: each use collects only the rows and columns it needs.
    """
    stats: dict[str, Any] = {"rare_tail_triples_dropped": 0, "hub_triples_dropped": 0, "hubs_capped": 0,
                             "unreachable_triples_dropped": 0}
    facts = facts.lazy()
    linked = _item_links(items, links, source_order, stats)
    iri_key = linked.select(pl.col("entity_iri").alias("iri"), "key").unique()
    edges, subjects = _reachable(facts, label_predicates, iri_key["iri"], config.hops)
    dates = _year_buckets(facts, subjects, config.year_bucket)
    stats["literals_dropped"] = facts.filter(
        (pl.col("object_kind") == "literal") & ~pl.col("predicate").is_in(label_predicates)
        & pl.col("subject").is_in(subjects.implode())
    ).select(pl.len()).collect().item() - dates.height
    stats |= {"facts_in": facts.select(pl.len()).collect().item(), "relation_facts": edges.height,
              "year_facts": dates.height}
    keyed = _to_keys(pl.concat([edges, dates]), iri_key)
    del edges  # the large frames go as soon as they are used: peak memory is what limits the scale
    stats["self_loops_dropped"] = keyed.filter(pl.col("head") == pl.col("tail")).height
    triples = keyed.filter(pl.col("head") != pl.col("tail"))
    del keyed
    if config.min_tail_degree > 1 or config.max_tail_degree is not None:
        triples = _prune_unreachable(_degree_filter(triples, config, stats), config.hops, stats)
    if config.inverse_relations:
        inverse = triples.select(
            pl.col("tail").alias("head"), (INVERSE + pl.col("predicate")).alias("predicate"),
            pl.col("head").alias("tail"),
        )
        stats["inverse_triples"] = inverse.height
        triples = pl.concat([triples, inverse])

    item_keys = (ITEM_PREFIX + items["item_id"]).alias("key")
    entity_keys = pl.concat([item_keys, triples["head"], triples["tail"]]).unique()
    entity_vocab = vocab("entities", entity_keys)
    relation_vocab = vocab("relations", triples["predicate"].unique())
    item_vocab = vocab("items", items["item_id"])
    entities = _entities(entity_vocab, items, linked, facts, label_predicates, config.languages)
    relations = _relations(relation_vocab, relation_names)
    ids = entity_vocab.select(pl.col("key"), pl.col("id"))
    triple_ids = (
        triples.join(ids.rename({"key": "head", "id": "head_id"}), on="head")
        .join(relation_vocab.select(pl.col("key").alias("predicate"), pl.col("id").alias("relation_id")),
              on="predicate")
        .join(ids.rename({"key": "tail", "id": "tail_id"}), on="tail")
        .select("head_id", "relation_id", "tail_id").sort("head_id", "relation_id", "tail_id")
    )
    item_entity = (
        item_vocab.filter(~pl.col("retired")).sort("id")
        .select(pl.int_range(pl.len(), dtype=pl.Int32).alias("item_index"), pl.col("key").alias("item_id"))
        .with_columns((ITEM_PREFIX + pl.col("item_id")).alias("key"))
        .join(ids, on="key").select("item_index", "item_id", pl.col("id").alias("entity_id")).sort("item_index")
    )
    return ItemKG(entities, relations, triple_ids, item_entity, stats)


def _item_links(
    items: pl.DataFrame, links: pl.DataFrame, source_order: list[str], stats: dict[str, Any]
) -> pl.DataFrame:
    """Accepted links of catalog items: ``item_id, entity_iri, source, key, rank`` (rank = source order)."""
    accepted = links.filter(pl.col("status") == "accepted").select("item_id", "entity_iri", "source")
    known = accepted.join(items.select("item_id"), on="item_id", how="semi")
    order = {name: i for i, name in enumerate(source_order)}
    linked = known.with_columns(
        (ITEM_PREFIX + pl.col("item_id")).alias("key"),
        pl.col("source").replace_strict(order, default=len(order), return_dtype=pl.Int32).alias("rank"),
    )
    n_items = items.height
    aligned = linked["item_id"].n_unique()
    stats["alignment"] = {
        "items": n_items,
        "aligned": aligned,
        "unaligned": n_items - aligned,
        "coverage": round(aligned / n_items, 4) if n_items else 0.0,
        "by_source": dict(sorted(linked.group_by("source").agg(pl.col("item_id").n_unique()).iter_rows())),
        "links_of_unknown_items": accepted.height - known.height,
    }
    return linked


def _reachable(
    facts: pl.LazyFrame, label_predicates: list[str], start: pl.Series, hops: int
) -> tuple[pl.DataFrame, pl.Series]:
    """IRI-valued facts within ``hops`` of ``start`` (``subject, predicate, object``) and their subjects."""
    relational = facts.filter(
        (pl.col("object_kind") == "iri") & ~pl.col("predicate").is_in(label_predicates)
    ).select("subject", "predicate", "object").collect(engine="streaming")
    frontier = start.unique().alias("subject")
    seen = frontier
    subjects = [frontier]
    found = []
    for _ in range(hops):
        step = relational.join(frontier.to_frame(), on="subject", how="semi")
        found.append(step)
        frontier = step["object"].unique().alias("subject")
        frontier = frontier.filter(~frontier.is_in(seen.implode()))
        if frontier.is_empty():
            break
        seen = pl.concat([seen, frontier])
        subjects.append(frontier)
    edges = pl.concat(found) if found else relational.clear()
    return edges, pl.concat(subjects[:hops]).unique()


def _year_buckets(facts: pl.LazyFrame, subjects: pl.Series, width: int) -> pl.DataFrame:
    """Date literals of ``subjects`` as year-bucket tails: the earliest year per subject and property."""
    dated = facts.filter(
        (pl.col("object_kind") == "literal") & pl.col("datatype").is_in(DATE_TYPES)
        & pl.col("subject").is_in(subjects.implode())
    ).select("subject", "predicate", "object").collect()
    if width == 0 or dated.is_empty():
        return pl.DataFrame(schema={"subject": pl.String, "predicate": pl.String, "object": pl.String})
    start = (pl.col("year") // width) * width
    return (
        dated.with_columns(pl.col("object").str.extract(r"^(-?\d{1,6})", 1).cast(pl.Int32, strict=False).alias("year"))
        .drop_nulls("year")
        .group_by("subject", "predicate").agg(pl.col("year").min())
        .select("subject", "predicate",
                (YEAR_PREFIX + start.cast(pl.String) + "-" + (start + width - 1).cast(pl.String)).alias("object"))
    )


def year_label(key: pl.Expr) -> pl.Expr:
    """``urn:kgrec:year:1990-1999`` -> ``1990–1999`` (``1994`` for one-year buckets)."""
    span = key.str.strip_prefix(YEAR_PREFIX)
    parts = span.str.extract_groups(r"^(-?\d+)-(-?\d+)$")
    first, last = parts.struct.field("1"), parts.struct.field("2")
    return pl.when(first == last).then(first).otherwise(first + "–" + last)


def _to_keys(spo: pl.DataFrame, iri_key: pl.DataFrame) -> pl.DataFrame:
    """``head, predicate, tail`` entity keys: linked IRIs become their items' keys (one row per item)."""
    keys = iri_key.lazy()
    return (
        spo.lazy()
        .join(keys.rename({"iri": "subject", "key": "head"}), on="subject", how="left")
        .join(keys.rename({"iri": "object", "key": "tail"}), on="object", how="left")
        .select(pl.coalesce("head", "subject").alias("head"), "predicate", pl.coalesce("tail", "object").alias("tail"))
        .unique()
        .collect(engine="streaming")
    )


def _degree_filter(triples: pl.DataFrame, config: AssemblyConfig, stats: dict[str, Any]) -> pl.DataFrame:
    is_attribute = ~pl.col("tail").str.starts_with(ITEM_PREFIX)
    ranked = triples.sort("tail", "head", "predicate").with_columns(
        pl.len().over("tail").alias("_deg"), pl.int_range(pl.len()).over("tail").alias("_rank")
    )
    rare = is_attribute & (pl.col("_deg") < config.min_tail_degree)
    capped = is_attribute & (pl.col("_rank") >= (config.max_tail_degree or 2**62))
    stats["rare_tail_triples_dropped"] = ranked.filter(rare).height
    stats["hub_triples_dropped"] = ranked.filter(capped & ~rare).height
    stats["hubs_capped"] = ranked.filter(capped & ~rare)["tail"].n_unique()
    return ranked.filter(~rare & ~capped).drop("_deg", "_rank")


def _prune_unreachable(triples: pl.DataFrame, hops: int, stats: dict[str, Any]) -> pl.DataFrame:
    """Keep triples whose head is an item or reachable from one within ``hops`` (after the filters)."""
    frontier = triples.filter(pl.col("head").str.starts_with(ITEM_PREFIX))["head"].unique()
    kept = []
    for _ in range(hops):
        step = triples.filter(pl.col("head").is_in(frontier.implode()))
        kept.append(step)
        frontier = step["tail"].unique()
    out = pl.concat(kept).unique() if kept else triples.clear()
    stats["unreachable_triples_dropped"] = triples.height - out.height
    return out


def _entities(
    vocab: pl.DataFrame, items: pl.DataFrame, linked: pl.DataFrame, facts: pl.LazyFrame,
    label_predicates: list[str], languages: tuple[str, ...],
) -> pl.DataFrame:
    titles = items.select((ITEM_PREFIX + pl.col("item_id")).alias("key"), pl.col("title").alias("_title"))
    primary = (linked.sort("rank", "entity_iri").unique("key", keep="first")
               .select("key", pl.col("entity_iri").alias("_iri")))
    labels = _labels(facts, label_predicates, languages)
    is_item = pl.col("key").str.starts_with(ITEM_PREFIX)
    return (
        vocab.join(titles, on="key", how="left").join(primary, on="key", how="left")
        .join(labels.rename({"subject": "key", "label": "_label"}), on="key", how="left")
        .select(
            pl.col("id").alias("entity_id"),
            pl.coalesce("_iri", "key").alias("iri"),
            pl.when(is_item).then(pl.col("_title"))
            .when(pl.col("key").str.starts_with(YEAR_PREFIX)).then(year_label(pl.col("key")))
            .otherwise(pl.col("_label")).alias("label"),
            pl.when(is_item).then(pl.lit("item")).otherwise(pl.lit("attribute")).alias("kind"),
            "retired",
        )
        .sort("entity_id")
    )


def _labels(facts: pl.LazyFrame, label_predicates: list[str], languages: tuple[str, ...]) -> pl.DataFrame:
    """One label per subject: the first of ``languages``, then untagged, then any; ties by text."""
    rank = {lang: i for i, lang in enumerate(languages)}
    return (
        facts.filter(pl.col("predicate").is_in(label_predicates) & (pl.col("object_kind") == "literal"))
        .select("subject", "object", "lang")
        .with_columns(
            pl.col("lang").replace_strict(rank, default=len(rank) + 1, return_dtype=pl.Int32)
            .fill_null(len(rank)).alias("_rank")
        )
        .sort("subject", "_rank", "object")
        .unique("subject", keep="first")
        .select("subject", pl.col("object").alias("label"))
        .collect()
    )


def _relations(vocab: pl.DataFrame, names: Mapping[str, str]) -> pl.DataFrame:
    forward = pl.col("key").str.strip_prefix(INVERSE)
    inverse = pl.col("key").str.starts_with(INVERSE)
    local = forward.str.extract(r"([^/#]+)$", 1)
    name = forward.replace_strict(dict(names), default=local, return_dtype=pl.String)
    ids = vocab.select(pl.col("key").alias("_forward"), pl.col("id").alias("inverse_of"))
    return (
        vocab.with_columns(forward.alias("_forward"))
        .join(ids, on="_forward", how="left")
        .select(
            pl.col("id").alias("relation_id"),
            pl.col("key").alias("iri"),
            pl.when(inverse).then(name + "_inverse").otherwise(name).alias("label"),
            pl.when(inverse).then(pl.col("inverse_of")).otherwise(None).cast(pl.Int32).alias("inverse_of"),
            "retired",
        )
        .sort("relation_id")
    )
