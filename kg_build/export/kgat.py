"""KGAT text files of a :class:`~kg_build.tables.KG`: :func:`write_kgat`.

The files of KGAT's ``Data/<dataset>/`` (xiangwang1223/knowledge_graph_attention_network): ``train.txt``,
``test.txt`` and our extra ``valid.txt``, ``cold_test.txt`` (``user item item ...`` per user, no header),
``kg_final.txt`` (``h r t``, no header), and ``item_list.txt`` (``org_id remap_id freebase_id``),
``entity_list.txt``, ``user_list.txt``, ``relation_list.txt`` (``org_id remap_id``), each with that
header line, as the authors' files have it (KGAT's loader reads none of the four lists).

KGAT's hidden convention, named here: its code takes items to be the entities ``0..n_items-1`` with
an item's remap id equal to its entity's remap id, and it adds the inverse of every relation itself.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kg_build.export.files import ExportError, active_triples, check_tokens, staged, write_lines
from kg_build.splits import SPLITS
from kg_build.tables import KG

KGAT_SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt", "cold_test": "cold_test.txt"}


def write_kgat(kg: KG, folder: Path) -> dict[str, Path]:
    """Write ``folder`` as a KGAT ``Data/<dataset>/`` folder; returns ``{file stem: final path}``.

    Remap ids: users are ``user_index``; items are ``item_index`` and their entities take the same
    ids (KGAT's convention), the other active entities follow in ``entity_id`` order; relations are
    the forward ones (``inverse_of`` null) in ``relation_id`` order, since KGAT adds inverses
    itself. A triple of an inverse relation is written as the forward triple it mirrors
    (``(h, r^-1, t)`` -> ``(t, r, h)``), deduplicated, so no fact is lost.
    """
    entity_remap = _kgat_entity_remap(kg)
    relation_remap = kg.relations.filter(~pl.col("retired") & pl.col("inverse_of").is_null()).sort("relation_id")
    relation_remap = relation_remap.with_row_index("remap").with_columns(pl.col("remap").cast(pl.Int64))
    files = {**KGAT_SPLIT_FILES, "kg_final": "kg_final.txt",
             "item_list": "item_list.txt", "entity_list": "entity_list.txt", "user_list": "user_list.txt",
             "relation_list": "relation_list.txt"}
    with staged(folder) as tmp:
        for split_name in SPLITS:
            write_lines(_kgat_user_lines(kg.splits.filter(pl.col("split") == split_name)), tmp / files[split_name])
        write_lines(_kgat_triples(kg, entity_remap, relation_remap), tmp / files["kg_final"])
        check_tokens(kg.item_entity, "item_entity", "item_id", r"\s", "whitespace")
        check_tokens(kg.entities.filter(~pl.col("retired")), "entities", "iri", r"\s", "whitespace")
        items = kg.item_entity.sort("item_index").join(kg.entities.select("entity_id", "iri"), on="entity_id")
        write_lines(_list_lines(items, ["item_id", "item_index", "iri"], "org_id remap_id freebase_id"),
                    tmp / files["item_list"])
        entities = entity_remap.join(kg.entities.select("entity_id", "iri"), on="entity_id").sort("remap")
        write_lines(_list_lines(entities, ["iri", "remap"], "org_id remap_id"), tmp / files["entity_list"])
        check_tokens(kg.users, "users", "user_id", r"\s", "whitespace")
        write_lines(_list_lines(kg.users.sort("user_index"), ["user_id", "user_index"], "org_id remap_id"),
                    tmp / files["user_list"])
        check_tokens(relation_remap, "relations", "iri", r"\s", "whitespace")
        write_lines(_list_lines(relation_remap, ["iri", "remap"], "org_id remap_id"), tmp / files["relation_list"])
    return {stem: folder / file for stem, file in files.items()}


def _kgat_entity_remap(kg: KG) -> pl.DataFrame:
    """``entity_id, remap``: item entities first as ``item_index``, then the other active entities."""
    items = kg.item_entity.sort("item_index")
    n_items = items.height
    if not items["item_index"].equals(pl.Series("item_index", range(n_items), pl.Int32)):
        raise ExportError(f"item_entity.item_index must be dense 0..{n_items - 1} for KGAT's item remap")
    shared = items.filter(pl.col("entity_id").is_duplicated())
    if shared.height:
        raise ExportError(f"item_entity.entity_id: items share entity {shared['entity_id'][0]} "
                          f"({', '.join(shared['item_id'].head(5))}); KGAT needs one entity per item")
    active = kg.entities.filter(~pl.col("retired"))
    unknown = items.filter(~pl.col("entity_id").is_in(active["entity_id"].implode()))
    if unknown.height:
        raise ExportError(f"item_entity.entity_id: item {unknown['item_id'][0]!r} points at entity "
                          f"{unknown['entity_id'][0]}, which is retired or not in entities")
    others = active.filter(~pl.col("entity_id").is_in(items["entity_id"].implode())).sort("entity_id")
    return pl.concat([
        items.select("entity_id", pl.col("item_index").cast(pl.Int64).alias("remap")),
        others.select("entity_id", (pl.int_range(pl.len()) + n_items).cast(pl.Int64).alias("remap")),
    ])


def _kgat_triples(kg: KG, entity_remap: pl.DataFrame, relation_remap: pl.DataFrame) -> pl.DataFrame:
    """``line``: ``h r t`` in remap ids, forward relations only."""
    inverse = kg.relations.filter(pl.col("inverse_of").is_not_null()).select("relation_id", "inverse_of")
    flipped = pl.col("inverse_of").is_not_null()
    forward = (
        active_triples(kg).join(inverse, on="relation_id", how="left")
        .select(
            pl.when(flipped).then(pl.col("tail_id")).otherwise(pl.col("head_id")).alias("head_id"),
            pl.coalesce("inverse_of", "relation_id").alias("relation_id"),
            pl.when(flipped).then(pl.col("head_id")).otherwise(pl.col("tail_id")).alias("tail_id"),
        )
        .unique()
    )
    remapped = (
        forward.join(relation_remap.select("relation_id", pl.col("remap").alias("r")), on="relation_id", how="left")
        .join(entity_remap.select(pl.col("entity_id").alias("head_id"), pl.col("remap").alias("h")), on="head_id")
        .join(entity_remap.select(pl.col("entity_id").alias("tail_id"), pl.col("remap").alias("t")), on="tail_id")
    )
    orphan = remapped.filter(pl.col("r").is_null())
    if orphan.height:
        raise ExportError(f"relations.inverse_of: relation {orphan['relation_id'][0]} is the target of an inverse "
                          "but is not an active forward relation")
    return remapped.sort("h", "r", "t").select(pl.format("{} {} {}", "h", "r", "t").alias("line"))


def _kgat_user_lines(rows: pl.DataFrame) -> pl.DataFrame:
    """``line``: ``user item item ...`` per user with rows, both sorted."""
    return (
        rows.sort("user_index", "item_index")
        .group_by("user_index", maintain_order=True)
        .agg(pl.col("item_index").cast(pl.String).str.join(" ").alias("items"))
        .select(pl.format("{} {}", "user_index", "items").alias("line"))
    )


def _list_lines(frame: pl.DataFrame, columns: list[str], header: str) -> pl.DataFrame:
    body = frame.select(pl.concat_str([pl.col(c).cast(pl.String) for c in columns], separator=" ").alias("line"))
    return pl.concat([pl.DataFrame({"line": [header]}), body])
