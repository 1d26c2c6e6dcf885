"""The KG tables the models train on (DESIGN.md §4), as one value: :class:`KG`.

``entities``, ``relations``, ``triples`` (the item KG), ``item_entity`` (items to their entities,
with the dense ``item_index``), ``users`` (the dense ``user_index``), ``interactions`` (implicit
feedback) and ``splits``. Entity and relation ids are the stable ids of the vocabularies; retired
ones stay in ``entities`` / ``relations`` (``retired = true``) so ids never shift, and nothing
active points at them. The collaborative part (users, interactions, splits) is kept apart from the
item KG; a model that wants a collaborative KG (KGAT) builds it from both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import polars as pl

KINDS = ("item", "attribute")

ENTITIES = {"entity_id": pl.Int32, "iri": pl.String, "label": pl.String, "kind": pl.String, "retired": pl.Boolean}
RELATIONS = {"relation_id": pl.Int32, "iri": pl.String, "label": pl.String, "inverse_of": pl.Int32,
             "retired": pl.Boolean}
TRIPLES = {"head_id": pl.Int32, "relation_id": pl.Int32, "tail_id": pl.Int32}
ITEM_ENTITY = {"item_index": pl.Int32, "item_id": pl.String, "entity_id": pl.Int32}
USERS = {"user_index": pl.Int32, "user_id": pl.String}
INTERACTIONS = {"user_index": pl.Int32, "item_index": pl.Int32, "weight": pl.Float32,
                "ts": pl.Datetime("us", "UTC")}
SPLITS = {"user_index": pl.Int32, "item_index": pl.Int32, "split": pl.String}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "entities": ENTITIES, "relations": RELATIONS, "triples": TRIPLES, "item_entity": ITEM_ENTITY,
    "users": USERS, "interactions": INTERACTIONS, "splits": SPLITS,
}


class KGError(ValueError):
    """KG tables that do not fit their contract; the message names the table and the column."""


@dataclass(frozen=True)
class KG:
    entities: pl.DataFrame
    relations: pl.DataFrame
    triples: pl.DataFrame
    item_entity: pl.DataFrame
    users: pl.DataFrame
    interactions: pl.DataFrame
    splits: pl.DataFrame

    def __post_init__(self) -> None:
        for name, schema in SCHEMAS.items():
            frame = getattr(self, name)
            missing = [c for c in schema if c not in frame.columns]
            if missing:
                raise KGError(f"KG table {name} lacks columns {missing} (has {frame.columns})")
            try:
                object.__setattr__(self, name, frame.select(list(schema)).cast(schema))  # type: ignore[arg-type]
            except pl.exceptions.InvalidOperationError as exc:
                raise KGError(f"KG table {name} does not fit its contract {schema}: {exc}") from None

    def tables(self) -> dict[str, pl.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tables(cls, tables: dict[str, pl.DataFrame]) -> KG:
        missing = [name for name in SCHEMAS if name not in tables]
        if missing:
            raise KGError(f"a KG needs the tables {missing}")
        return cls(**{name: tables[name] for name in SCHEMAS})

    def counts(self) -> dict[str, int]:
        """Row counts, with active entities and relations apart from retired ones."""
        return {
            "entities": int((~self.entities["retired"]).sum()),
            "entities_retired": int(self.entities["retired"].sum()),
            "relations": int((~self.relations["retired"]).sum()),
            "triples": self.triples.height,
            "items": self.item_entity.height,
            "users": self.users.height,
            "interactions": self.interactions.height,
            **{f"split_{s}": n for s, n in self.splits.group_by("split").len().sort("split").iter_rows()},
        }

    def triples_by_relation(self) -> dict[str, dict[str, object]]:
        """``{relation iri: {"label": ..., "triples": n}}`` for every relation with triples."""
        counts = self.triples.group_by("relation_id").len().join(
            self.relations.select("relation_id", "iri", "label"), on="relation_id", how="left"
        )
        return {iri: {"label": label, "triples": int(n)}
                for iri, label, n in counts.select("iri", "label", "len").sort("iri").iter_rows()}
