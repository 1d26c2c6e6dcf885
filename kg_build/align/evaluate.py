"""Grade accepted links against gold links: precision, recall and F1, overall and per method.

Gold is a CSV (``item_id,entity_iri[,source]``) or a links Parquet file whose accepted links of
one method are taken as gold (``exact_id`` by default: they are right by construction). Only
items that have a gold entity are graded:

- precision: accepted links to the gold entity / accepted links of gold items;
- recall: accepted links to the gold entity / gold items;
- per method, the same over the links that method accepted (recall: its share of the gold items).

Accepted links of items outside the gold are counted but not graded (nothing says whether they
are right), and listed as ``ungraded`` in the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl


class GoldError(ValueError):
    """The gold file is unusable; the message names it and what is wrong."""


@dataclass(frozen=True)
class Scores:
    graded: int
    correct: int
    gold: int

    @property
    def precision(self) -> float:
        return self.correct / self.graded if self.graded else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Evaluation:
    overall: Scores
    per_method: dict[str, Scores]
    wrong: pl.DataFrame  # accepted links to another entity than the gold one
    missed: pl.DataFrame  # gold items without an accepted link
    ungraded: int  # accepted links of items that have no gold

    def table(self) -> str:
        lines = [f"{'method':<12} {'accepted':>9} {'correct':>8} {'precision':>9} {'recall':>7} {'F1':>6}"]
        rows = [*self.per_method.items(), ("all", self.overall)]
        for name, s in rows:
            lines.append(f"{name:<12} {s.graded:>9,} {s.correct:>8,} {s.precision:>9.4f} {s.recall:>7.4f} {s.f1:>6.4f}")
        lines.append(f"gold items: {self.overall.gold:,}; accepted links of items without gold (ungraded): "
                     f"{self.ungraded:,}; wrong: {self.wrong.height:,}; missed: {self.missed.height:,}")
        return "\n".join(lines)


def read_gold(path: Path, *, method: str = "exact_id") -> pl.DataFrame:
    """``item_id, source?, gold_iri`` from a gold CSV or from the ``method`` links of a links file."""
    if not path.is_file():
        raise GoldError(f"gold file {path} does not exist")
    if path.suffix == ".parquet":
        links = pl.read_parquet(path)
        gold = links.filter((pl.col("method") == method) & (pl.col("status") == "accepted"))
        if gold.is_empty():
            raise GoldError(f"{path}: no accepted {method!r} links to use as gold")
        return gold.select("item_id", "source", pl.col("entity_iri").alias("gold_iri"))
    try:
        gold = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise GoldError(f"{path}: not a readable CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("item_id", "entity_iri") if c not in gold.columns]
    if missing:
        raise GoldError(f"{path}:1: header lacks {', '.join(missing)} (expected item_id,entity_iri[,source])")
    source = pl.col("source") if "source" in gold.columns else pl.lit(None, pl.String)
    return gold.select("item_id", source.alias("source"), pl.col("entity_iri").alias("gold_iri")).drop_nulls(
        "gold_iri")


def evaluate(links: pl.DataFrame, gold: pl.DataFrame) -> Evaluation:
    """Grade ``links`` (the links contract) against ``read_gold`` output."""
    by_source = gold["source"].null_count() < gold.height
    keys = ["item_id", "source"] if by_source else ["item_id"]
    if not by_source:
        sources = links["source"].unique().to_list()
        if len(sources) > 1:
            raise GoldError(f"the links cover several sources ({', '.join(sorted(sources))}): give the gold a "
                            "source column")
    dup = gold.filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise GoldError(f"gold names more than one entity for item {dup['item_id'][0]!r}")
    gold = gold.select(*keys, "gold_iri")
    accepted = links.filter(pl.col("status") == "accepted")
    graded = accepted.join(gold, on=keys, how="inner").with_columns(
        (pl.col("entity_iri") == pl.col("gold_iri")).alias("correct"))
    ungraded = accepted.join(gold, on=keys, how="anti").height
    n_gold = gold.height

    def scores(frame: pl.DataFrame) -> Scores:
        return Scores(graded=frame.height, correct=int(frame["correct"].sum()), gold=n_gold)

    per_method = {m: scores(f) for (m,), f in sorted(graded.partition_by("method", as_dict=True).items())}
    detail = [c for c in ("item_name", "entity_name", "score", "margin") if c in links.columns]
    wrong = graded.filter(~pl.col("correct")).select(*keys, "method", "entity_iri", "gold_iri", *detail)
    missed = gold.join(accepted.select(keys), on=keys, how="anti").join(
        links.select(*keys, "status", "method", "entity_iri", *detail), on=keys, how="left")
    return Evaluation(scores(graded), per_method, wrong.sort(keys), missed.sort(keys), ungraded)
