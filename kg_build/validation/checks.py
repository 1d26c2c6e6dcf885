"""The named checks of a KG, suite by suite, as plain specs: which GX expectation runs on which frame.

Column checks run on the KG tables themselves. What GX has no expectation for (foreign keys, leakage,
two tables agreeing on their pairs) is computed here with polars joins into a frame of the offending
rows, and GX expects that frame to be empty (``expect_table_row_count_to_equal``, value 0), so its
rows are the examples. :mod:`kg_build.validation.drift` adds the drift suite; nothing here imports GX.

Check names are an API: other modules' tests assert on them.
"""

from __future__ import annotations

import polars as pl

from kg_build.splits import SPLITS
from kg_build.tables import KG, KINDS
from kg_build.validation.drift import DriftBand, drift
from kg_build.validation.spec import On, Suite, offenders, suite

ID_BELOW = 2**31  # stable ids are int32 and non-negative
PAIR = ["user_index", "item_index"]
TRIPLE = ["head_id", "relation_id", "tail_id"]
HELD_OUT = [s for s in SPLITS if s != "train"]


def _active_ids(frame: pl.DataFrame, column: str) -> pl.Series:
    return frame.filter(pl.col("retired").not_())[column].drop_nulls().unique().sort()


def _dangling(rows: pl.DataFrame, column: str, ids: pl.Series, active: pl.Series) -> pl.DataFrame:
    """Rows whose non-null ``column`` is no active id, with why: ``retired`` or ``unknown``."""
    return (
        rows.filter(pl.col(column).is_not_null() & pl.col(column).is_in(active.implode()).not_())
        .with_columns(pl.when(pl.col(column).is_in(ids.implode())).then(pl.lit("retired"))
                      .otherwise(pl.lit("unknown")).alias("reason"))
    )


def entities(kg: KG) -> Suite:
    on = On("entities", "entities")
    return suite(
        "entities",
        on.not_null("entity_id_not_null", "entity_id"),
        on.unique("entity_id_unique", "entity_id"),
        on.below("entity_id_in_range", "entity_id", ID_BELOW, "int32"),
        on.not_null("iri_not_null", "iri"),
        on.unique("iri_unique", "iri"),
        on.not_null("kind_not_null", "kind"),
        on.in_set("kind_in_set", "kind", list(KINDS), f"one of {', '.join(KINDS)}"),
        on.not_null("retired_not_null", "retired"),
    )


def relations(kg: KG) -> Suite:
    on = On("relations", "relations")
    return suite(
        "relations",
        on.not_null("relation_id_not_null", "relation_id"),
        on.unique("relation_id_unique", "relation_id"),
        on.not_null("relation_iri_not_null", "iri"),
        on.unique("relation_iri_unique", "iri"),
        on.not_null("relation_label_not_null", "label"),
        on.not_null("relation_retired_not_null", "retired"),
    )


def triples(kg: KG) -> Suite:
    on = On("triples", "triples")
    vocabulary = _active_ids(kg.relations, "relation_id").to_list()
    largest = kg.entities["entity_id"].max()
    entity_below = 0 if largest is None else int(largest) + 1  # type: ignore[arg-type]
    return suite(
        "triples",
        on.not_null("head_id_not_null", "head_id"),
        on.not_null("relation_id_in_triples_not_null", "relation_id"),
        on.not_null("tail_id_not_null", "tail_id"),
        on.unique_rows("triples_unique", TRIPLE),
        on.in_set("relation_in_vocabulary", "relation_id", vocabulary, "an active (non-retired) relation"),
        on.below("head_id_in_range", "head_id", entity_below, "at most the largest entity_id"),
        on.below("tail_id_in_range", "tail_id", entity_below, "at most the largest entity_id"),
    )


def item_entity(kg: KG) -> Suite:
    on = On("item_entity", "item_entity")
    return suite(
        "item_entity",
        on.not_null("item_index_not_null", "item_index"),
        on.unique("item_index_unique", "item_index"),
        on.below("item_index_dense", "item_index", kg.item_entity.height, "with unique and not null: dense"),
        on.not_null("item_id_not_null", "item_id"),
        on.unique("item_maps_to_one_entity", "item_id"),
        on.not_null("item_entity_id_not_null", "entity_id"),
    )


def users(kg: KG) -> Suite:
    on = On("users", "users")
    return suite(
        "users",
        on.not_null("user_index_not_null", "user_index"),
        on.unique("user_index_unique", "user_index"),
        on.below("user_index_dense", "user_index", kg.users.height, "with unique and not null: dense"),
        on.not_null("user_id_not_null", "user_id"),
        on.unique("user_id_unique", "user_id"),
    )


def interactions(kg: KG) -> Suite:
    n_users, n_items = kg.users.height, kg.item_entity.height
    null_keys = pl.concat([
        kg.interactions.with_row_index("row").filter(pl.any_horizontal(pl.col(PAIR).is_null()))
        .select(pl.lit("interactions").alias("table"), "row", *PAIR, pl.lit(None, pl.String).alias("split")),
        kg.splits.with_row_index("row").filter(pl.any_horizontal(pl.col([*PAIR, "split"]).is_null()))
        .select(pl.lit("splits").alias("table"), "row", *PAIR, "split"),
    ])
    on_i, on_s = On("interactions", "interactions"), On("interactions", "splits")
    return suite(
        "interactions",
        offenders("interactions", "interaction_keys_not_null", null_keys,
                  "no null user_index / item_index in interactions, nor null user_index / item_index / split "
                  "in splits"),
        on_i.unique_rows("interaction_pairs_unique", PAIR),
        on_i.below("interaction_user_in_range", "user_index", n_users, "a user_index of users"),
        on_i.below("interaction_item_in_range", "item_index", n_items, "an item_index of item_entity"),
        on_s.in_set("split_in_set", "split", list(SPLITS), f"one of {', '.join(SPLITS)}"),
        on_s.unique_rows("split_pairs_unique", PAIR),
        on_s.below("split_user_in_range", "user_index", n_users, "a user_index of users"),
        on_s.below("split_item_in_range", "item_index", n_items, "an item_index of item_entity"),
    )


def integrity(kg: KG) -> Suite:
    entity_ids = kg.entities["entity_id"].drop_nulls().unique()
    active = _active_ids(kg.entities, "entity_id")
    relation_ids = kg.relations["relation_id"].drop_nulls().unique()
    active_relations = _active_ids(kg.relations, "relation_id")
    not_items = (
        kg.item_entity.join(kg.entities.filter(pl.col("retired").not_()).select("entity_id", "kind", "iri"),
                            on="entity_id")
        .filter(pl.col("kind") != "item").sort("item_index")
    )
    bad_inverse = _dangling(
        kg.relations.filter(pl.col("retired").not_()).select("relation_id", "iri", "inverse_of"),
        "inverse_of", relation_ids, active_relations,
    )
    triples_ = kg.triples.sort(TRIPLE)
    splits_pairs, interaction_pairs = (t.select(PAIR).drop_nulls().unique() for t in (kg.splits, kg.interactions))
    mismatch = pl.concat([
        splits_pairs.join(interaction_pairs, on=PAIR, how="anti").with_columns(pl.lit("splits only").alias("in")),
        interaction_pairs.join(splits_pairs, on=PAIR, how="anti")
        .with_columns(pl.lit("interactions only").alias("in")),
    ]).sort(PAIR)
    return suite(
        "integrity",
        offenders("integrity", "no_dangling_heads", _dangling(triples_, "head_id", entity_ids, active),
                  "every triples.head_id is an active entity"),
        offenders("integrity", "no_dangling_tails", _dangling(triples_, "tail_id", entity_ids, active),
                  "every triples.tail_id is an active entity"),
        offenders("integrity", "no_dangling_item_entities",
                  _dangling(kg.item_entity.sort("item_index"), "entity_id", entity_ids, active),
                  "every item_entity.entity_id is an active entity"),
        offenders("integrity", "item_entities_are_items", not_items,
                  "every item_entity.entity_id is an entity of kind item"),
        offenders("integrity", "inverse_of_exists", bad_inverse,
                  "every active relation's inverse_of is null or an active relation"),
        offenders("integrity", "split_pairs_match_interactions", mismatch,
                  "splits and interactions hold the same (user_index, item_index) pairs"),
    )


def leakage(kg: KG) -> Suite:
    train = kg.splits.filter(pl.col("split") == "train")
    leaked = kg.splits.filter(pl.col("split").is_in(HELD_OUT)).join(train.select(PAIR), on=PAIR, how="semi")
    cold = kg.splits.filter(pl.col("split") == "cold_test").select("item_index").unique()
    seen = kg.splits.filter(pl.col("split") != "cold_test").join(cold, on="item_index", how="semi")
    return suite(
        "leakage",
        offenders("leakage", "no_leakage", leaked.sort(PAIR),
                  f"no (user_index, item_index) pair of {' / '.join(HELD_OUT)} is also in train"),
        offenders("leakage", "cold_items_unseen", seen.sort("item_index", "user_index"),
                  "no item of cold_test appears in train / valid / test"),
    )


def plan(kg: KG, previous: dict[str, int] | None, band: DriftBand) -> list[Suite]:
    suites = [entities(kg), relations(kg), triples(kg), item_entity(kg), users(kg), interactions(kg), integrity(kg),
              leakage(kg)]
    return suites if previous is None else [*suites, drift(kg, previous, band)]
