"""Exact matchers: shared external ids, and equal normalised names with compatible years."""

from __future__ import annotations

import polars as pl

from kg_build.align.base import Side, best_pairs, name_factor, year_factor

ARTICLE = 0.94  # names equal only without a leading article
SQUASHED = 0.99  # names equal only without spaces


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
    """Equal ``core`` names (normalised, leading article dropped) and years within ``tolerance``.

    Names equal only without their article ("The Mask" / "Mask") are weaker evidence (x0.94): such
    a link is accepted with a year that agrees, and goes to review without one. Items with no equal
    ``core`` fall back to equal ``squash`` keys ("Mute Math" / "Mutemath", x0.99).
    """

    method = "exact_label"

    def __init__(self, *, year_tolerance: int = 1) -> None:
        self.year_tolerance = year_tolerance

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        by_core = items.names.join(entities.names, on="core", suffix="_e").with_columns(
            pl.when(pl.col("norm") == pl.col("norm_e")).then(1.0).otherwise(ARTICLE).alias("key_factor"))
        rest = items.names.filter(~pl.col("id").is_in(by_core["id"].unique().implode()))
        by_squash = rest.join(entities.names, on="squash", suffix="_e").with_columns(
            pl.lit(SQUASHED).alias("key_factor"))
        pairs = pl.concat([by_core.drop("core", "squash", "squash_e"), by_squash.drop("core", "core_e", "squash")],
                          how="diagonal")
        score = (
            year_factor(pl.col("year"), pl.col("year_e"), self.year_tolerance)
            * name_factor(pl.col("primary"), pl.col("primary_e"))
            * pl.col("key_factor")
        )
        pairs = pairs.select(
            pl.col("id").alias("item_id"), pl.col("id_e").alias("entity_iri"), score.alias("score"),
            pl.col("name").alias("item_name"), pl.col("name_e").alias("entity_name"),
        ).drop_nulls("score")
        return best_pairs(pairs)
