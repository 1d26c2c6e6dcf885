"""The collaborative part of the KG: users, implicit interactions and splits, in dense indices.

Reads the catalog's interactions (``user_id, item_id, weight, ts``) and the ``item_entity`` table;
keeps the positives (:func:`kg_build.splits.implicit`), gives users stable ids through the ``users``
vocabulary and a dense ``user_index`` (active users in stable-id order, as ``item_index`` is for
items), and splits them (:func:`kg_build.splits.split`). Kept apart from the item KG; a model
that wants a collaborative KG (KGAT) joins the two itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from kg_build.assemble import Vocab
from kg_build.splits import SplitConfig, implicit, split


@dataclass(frozen=True)
class Collaborative:
    users: pl.DataFrame
    interactions: pl.DataFrame
    splits: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def collaborative(
    interactions: pl.DataFrame,
    item_entity: pl.DataFrame,
    *,
    threshold: float | None,
    split_config: SplitConfig,
    vocab: Vocab,
) -> Collaborative:
    """Users, implicit interactions and their split, indexed by ``user_index`` and ``item_index``."""
    positives = implicit(interactions, threshold=threshold)
    known = positives.join(item_entity.select("item_id"), on="item_id", how="semi")
    user_vocab = vocab("users", known["user_id"].unique())
    users = (
        user_vocab.filter(~pl.col("retired")).sort("id")
        .select(pl.int_range(pl.len(), dtype=pl.Int32).alias("user_index"), pl.col("key").alias("user_id"))
    )
    assigned = split(known, split_config)
    indexed = (
        assigned.join(users, on="user_id").join(item_entity.select("item_id", "item_index"), on="item_id")
        .sort("user_index", "item_index")
    )
    stats = {
        "interactions_in": interactions.height,
        "positives": positives.height,
        "threshold": threshold,
        "unknown_items_dropped": positives.height - known.height,
        "users": users.height,
        "items_with_interactions": indexed["item_index"].n_unique(),
        "cold_items": indexed.filter(pl.col("split") == "cold_test")["item_index"].n_unique(),
        "splits": dict(sorted(indexed.group_by("split").len().iter_rows())),
    }
    return Collaborative(
        users=users,
        interactions=indexed.select("user_index", "item_index", "weight", "ts"),
        splits=indexed.select("user_index", "item_index", "split"),
        stats=stats,
    )
