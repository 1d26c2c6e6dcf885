"""Exact matchers: shared external ids, and equal normalised names with compatible years."""

from __future__ import annotations

import polars as pl

from kg_build.align.base import Side, best_pairs, name_factor, year_factor


class ExactId:
    """Items and entities sharing an external id (the catalog's IMDb id and ``wdt:P345``): score 1."""

    method = "exact_id"

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        pairs = items.ids.join(entities.ids, on=["id_name", "value"], suffix="_e")
        names_i = items.names.filter(pl.col("primary")).select("id", pl.col("name").alias("item_name"))
        names_e = entities.names.filter(pl.col("primary")).select("id", pl.col("name").alias("entity_name"))
        pairs = (
            pairs.select(pl.col("id").alias("item_id"), pl.col("id_e").alias("entity_iri"))
            .join(names_i, left_on="item_id", right_on="id", how="left")
            .join(names_e, left_on="entity_iri", right_on="id", how="left")
            .with_columns(pl.lit(1.0).alias("score"), pl.col("entity_name").fill_null(pl.col("entity_iri")))
        )
        return best_pairs(pairs)


class ExactLabel:
    """Equal ``core`` names (normalised, leading article dropped) and years within ``tolerance``."""

    method = "exact_label"

    def __init__(self, *, year_tolerance: int = 1) -> None:
        self.year_tolerance = year_tolerance

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        pairs = items.names.join(entities.names, on="core", suffix="_e")
        score = (
            year_factor(pl.col("year"), pl.col("year_e"), self.year_tolerance)
            * name_factor(pl.col("primary"), pl.col("primary_e"))
            * pl.when(pl.col("norm") == pl.col("norm_e")).then(1.0).otherwise(0.99)  # differ by an article
        )
        pairs = pairs.select(
            pl.col("id").alias("item_id"), pl.col("id_e").alias("entity_iri"), score.alias("score"),
            pl.col("name").alias("item_name"), pl.col("name_e").alias("entity_name"),
        ).drop_nulls("score")
        return best_pairs(pairs)
