"""The cascade: matchers in order, and a decision (not just a score) for every item.

Each matcher sees only the items no earlier matcher could decide and the entities not yet linked.
For an item, the first matcher that finds a candidate scoring at least ``review`` decides it:

- the chosen entity is the best-scoring one, ``margin`` its lead over the runner-up (its own score
  when there is none);
- ``accepted`` when ``score >= accept`` and ``margin >= min_margin``; otherwise ``ambiguous`` (a
  close runner-up, or a score between ``review`` and ``accept``), kept for a person to review;
- items no matcher decides are ``unmatched``.

One entity is linked to at most one item: when several accepted links share an entity, the best
keeps it and the others become ambiguous. Equal scores are broken by the name spelled exactly as the
entity's label ("Britney Spears" beats the catalog's duplicate "Britney Spears⊼"), then case aside;
a tie that is still a tie leaves all of them ambiguous. Every ambiguous link says why (``reason``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from kg_build.align.base import Matcher, Side

log = logging.getLogger(__name__)

LINKS = {"item_id": pl.String, "entity_iri": pl.String, "source": pl.String, "method": pl.String,
         "score": pl.Float32, "margin": pl.Float32, "status": pl.String}
# Beside each link, for the review file and the report.
DETAILS = {"item_name": pl.String, "entity_name": pl.String, "runner_up_iri": pl.String,
           "runner_up_name": pl.String, "runner_up_score": pl.Float32, "reason": pl.String}


@dataclass(frozen=True)
class Thresholds:
    accept: float = 0.9
    review: float = 0.6
    min_margin: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.review <= self.accept <= 1:
            raise ValueError(f"thresholds need 0 <= review <= accept <= 1, got {self}")


class Cascade:
    def __init__(self, matchers: Sequence[Matcher], thresholds: Thresholds = Thresholds()) -> None:
        self.matchers, self.thresholds = list(matchers), thresholds
        self.timings: dict[str, float] = {}

    def run(self, items: Side, entities: Side, item_ids: Sequence[str], source: str) -> pl.DataFrame:
        """One row per item: ``LINKS`` then ``DETAILS`` columns."""
        open_items = pl.Series("item_id", list(item_ids), dtype=pl.String)
        taken: list[str] = []
        decided = []
        for matcher in self.matchers:
            if open_items.is_empty():
                break
            began = time.perf_counter()
            pairs = matcher.match(items.only(open_items), entities.without(taken))
            pairs = pairs.filter(pl.col("score") >= self.thresholds.review)
            decisions = self._decide(pairs, matcher.method)
            self.timings[matcher.method] = time.perf_counter() - began
            decided.append(decisions)
            done = decisions["item_id"]
            open_items = open_items.filter(~open_items.is_in(done.implode()))
            taken += decisions.filter(pl.col("status") == "accepted")["entity_iri"].to_list()
            log.info("%s: %d items decided, %d accepted", matcher.method, done.len(),
                     decisions.filter(pl.col("status") == "accepted").height)
        primary_names = items.names.filter(pl.col("primary")).unique("id", keep="first").select(
            pl.col("id").alias("item_id"), pl.col("name").alias("item_name"))
        unmatched = open_items.to_frame().with_columns(
            pl.lit(None, pl.String).alias("entity_iri"), pl.lit(None, pl.String).alias("method"),
            pl.lit(0.0, pl.Float32).alias("score"), pl.lit(0.0, pl.Float32).alias("margin"),
            pl.lit("unmatched").alias("status"),
            *[pl.lit(None, dtype).alias(name) for name, dtype in DETAILS.items() if name != "item_name"],
        ).join(primary_names, on="item_id", how="left")
        links = pl.concat([*decided, unmatched], how="diagonal_relaxed")
        links = one_entity_per_item(links)
        return links.with_columns(pl.lit(source).alias("source")).select(list(LINKS) + list(DETAILS)).cast(
            LINKS | DETAILS)  # type: ignore[arg-type]

    def _decide(self, pairs: pl.DataFrame, method: str) -> pl.DataFrame:
        ranked = pairs.sort(["item_id", "score", "entity_iri"], descending=[False, True, False]).with_columns(
            pl.int_range(pl.len()).over("item_id").alias("rank")
        )
        best = ranked.filter(pl.col("rank") == 0).drop("rank")
        second = ranked.filter(pl.col("rank") == 1).select(
            "item_id", pl.col("entity_iri").alias("runner_up_iri"), pl.col("entity_name").alias("runner_up_name"),
            pl.col("score").alias("runner_up_score"),
        )
        t = self.thresholds
        return best.join(second, on="item_id", how="left").with_columns(
            pl.lit(method).alias("method"),
            (pl.col("score") - pl.col("runner_up_score").fill_null(0.0)).alias("margin"),
        ).with_columns(
            pl.when((pl.col("score") >= t.accept) & (pl.col("margin") >= t.min_margin))
            .then(pl.lit("accepted")).otherwise(pl.lit("ambiguous")).alias("status")
        ).with_columns(
            pl.when(pl.col("status") == "accepted").then(None)
            .when(pl.col("score") < t.accept).then(pl.lit("below accept"))
            .otherwise(pl.lit("close runner-up")).alias("reason")
        )


def one_entity_per_item(links: pl.DataFrame) -> pl.DataFrame:
    """Among accepted links sharing an entity the best keeps it; the others (and ties) become ambiguous."""
    accepted = pl.col("status") == "accepted"
    exactness = (
        pl.when(pl.col("item_name") == pl.col("entity_name")).then(2)
        .when(pl.col("item_name").str.to_lowercase() == pl.col("entity_name").str.to_lowercase()).then(1)
        .otherwise(0)
    )
    top = (
        links.filter(accepted)
        .with_columns(exactness.alias("_exact"))
        .filter(pl.col("score") == pl.col("score").max().over("entity_iri"))
        .filter(pl.col("_exact") == pl.col("_exact").max().over("entity_iri"))
    )
    winners = top.group_by("entity_iri").agg(pl.col("item_id").sort().alias("_winners"))
    flagged = links.join(winners, on="entity_iri", how="left")
    alone = (pl.col("_winners").list.len() == 1) & (pl.col("_winners").list.first() == pl.col("item_id"))
    lose = accepted & ~alone
    tied = pl.col("_winners").list.contains(pl.col("item_id"))
    collisions = flagged.filter(lose).height
    if collisions:
        log.info("%d accepted links gave way to a better or tied link to the same entity", collisions)
    return flagged.with_columns(
        pl.when(lose).then(pl.lit("ambiguous")).otherwise(pl.col("status")).alias("status"),
        pl.when(lose & tied)
        .then(pl.format("tie for this entity with item {}",
                        pl.col("_winners").list.set_difference(pl.concat_list("item_id")).list.join(", ")))
        .when(lose).then(pl.format("entity taken by item {}", pl.col("_winners").list.join(", ")))
        .otherwise(pl.col("reason")).alias("reason"),
    ).drop("_winners")
