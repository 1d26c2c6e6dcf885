"""The published KG's triples as IRIs, to check the triples an explanation's path_json says it walks."""

from __future__ import annotations

import polars as pl

from kg_build.tables import KG


def triple_iris(kg: KG) -> pl.DataFrame:
    """(head, relation, tail) IRIs of every triple of ``kg``, as path_json names them."""
    iri = kg.entities.select("entity_id", "iri")
    return (kg.triples.join(iri.rename({"entity_id": "head_id", "iri": "head"}), on="head_id")
            .join(iri.rename({"entity_id": "tail_id", "iri": "tail"}), on="tail_id")
            .join(kg.relations.select("relation_id", pl.col("iri").alias("relation")), on="relation_id")
            .select("head", "relation", "tail"))
