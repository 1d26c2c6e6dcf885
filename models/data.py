"""The KG tables (polars, DESIGN.md §4) as the tensors the models train on: :class:`RecData`.

The only module in ``models/`` that touches polars. Entities and relations get dense *model*
indices (``entity_index`` = rank of the stable ``entity_id`` among the active entities, likewise for
relations); the stable ids are kept in ``entity_ids``/``relation_ids`` to map results back. Items
and users keep their dense ``item_index``/``user_index`` from the KG tables, and an item's entity is
read from ``item_entity``, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import torch

from models.graph import KnowledgeGraph
from models.typing import LongTensor

SPLIT_NAMES = ("train", "valid", "test", "cold_test")


class DataError(ValueError):
    """The tables cannot be turned into model inputs; the message names the table and the problem."""


@dataclass(frozen=True)
class Pairs:
    """(user, item) pairs of one split. users, items: shape (P,)."""

    users: LongTensor
    items: LongTensor

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class RecData:
    """Users, items, the split interactions and the KG as tensors."""

    num_users: int
    num_items: int
    splits: dict[str, Pairs]
    kg: KnowledgeGraph
    entity_ids: LongTensor  # (num_entities,) stable entity_id of each entity index
    relation_ids: LongTensor  # (num_relations,) stable relation_id of each relation index

    @property
    def train(self) -> Pairs:
        return self.splits["train"]

    def items_of(self, *names: str) -> LongTensor:
        """The distinct items with an interaction in any of the named splits."""
        return torch.unique(torch.cat([self.splits[n].items for n in names]))

    @property
    def cold_items(self) -> LongTensor:
        """Items held out whole for the cold-start split (no train/valid/test interaction)."""
        cold = self.items_of("cold_test")
        return cold[~torch.isin(cold, self.items_of("train", "valid", "test"))]

    def summary(self) -> dict[str, int]:
        return {"users": self.num_users, "items": self.num_items, "entities": self.kg.num_entities,
                "relations": self.kg.num_relations, "triples": self.kg.num_triples,
                **{name: len(pairs) for name, pairs in self.splits.items()}}


def from_tables(
    *,
    entities: pl.DataFrame,
    relations: pl.DataFrame,
    triples: pl.DataFrame,
    item_entity: pl.DataFrame,
    users: pl.DataFrame,
    splits: pl.DataFrame,
) -> RecData:
    """Tensors from the KG tables (one published KG version, or a benchmark set's tables)."""
    active = entities.filter(~pl.col("retired")).select("entity_id").sort("entity_id").with_row_index("entity_index")
    rels = relations.filter(~pl.col("retired")).select("relation_id").sort("relation_id")
    rels = rels.with_row_index("relation_index")
    num_items, num_users = item_entity.height, users.height
    _require_dense(item_entity, "item_entity", "item_index")
    _require_dense(users, "users", "user_index")
    items = item_entity.join(active, on="entity_id", how="left")
    _require_no_nulls(items, "entity_index", "item_entity", "entity_id", "is not an active entity")
    coded = (
        triples.join(active.rename({"entity_id": "head_id", "entity_index": "h"}), on="head_id", how="left")
        .join(active.rename({"entity_id": "tail_id", "entity_index": "t"}), on="tail_id", how="left")
        .join(rels, on="relation_id", how="left")
    )
    for column, source in [("h", "head_id"), ("t", "tail_id")]:
        _require_no_nulls(coded, column, "triples", source, "is not an active entity")
    _require_no_nulls(coded, "relation_index", "triples", "relation_id", "is not an active relation")
    unknown = set(splits["split"].unique().to_list()) - set(SPLIT_NAMES)
    if unknown:
        raise DataError(f"splits: unknown split names {sorted(unknown)} (expected {list(SPLIT_NAMES)})")
    outside = ~pl.col("user_index").is_between(0, num_users - 1) | ~pl.col("item_index").is_between(0, num_items - 1)
    bad = splits.filter(outside)
    if bad.height:
        raise DataError(f"splits: {bad.height} rows point outside users (0..{num_users - 1}) or items "
                        f"(0..{num_items - 1}), e.g. {bad.head(3).to_dicts()}")
    kg = KnowledgeGraph(
        num_entities=active.height,
        num_relations=rels.height,
        heads=_long(coded["h"]),
        relations=_long(coded["relation_index"]),
        tails=_long(coded["t"]),
        item_entity=_long(items.sort("item_index")["entity_index"]),
    )
    parts = splits.partition_by("split", as_dict=True, include_key=False)
    pairs = {}
    for name in SPLIT_NAMES:
        frame = parts.get((name,), pl.DataFrame(schema={"user_index": pl.Int32, "item_index": pl.Int32}))
        frame = frame.sort("user_index", "item_index")
        pairs[name] = Pairs(_long(frame["user_index"]), _long(frame["item_index"]))
    if not len(pairs["train"]):
        raise DataError("splits: no train interactions")
    return RecData(num_users, num_items, pairs, kg, _long(active["entity_id"]), _long(rels["relation_id"]))


def _long(series: pl.Series) -> LongTensor:
    return torch.from_numpy(series.cast(pl.Int64).to_numpy().copy())


def _require_dense(frame: pl.DataFrame, table: str, column: str) -> None:
    values = frame[column].sort()
    if not values.equals(pl.Series(column, range(frame.height), dtype=values.dtype)):
        raise DataError(f"{table}.{column} must be exactly 0..{frame.height - 1} (dense, unique)")


def _require_no_nulls(frame: pl.DataFrame, column: str, table: str, source: str, what: str) -> None:
    missing = frame.filter(pl.col(column).is_null())
    if missing.height:
        examples = missing[source].head(5).to_list()
        raise DataError(f"{table}: {missing.height} rows whose {source} {what}, e.g. {examples}")
