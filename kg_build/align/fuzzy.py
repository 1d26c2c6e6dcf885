"""Fuzzy matching with rapidfuzz, vectorised with ``process.cdist`` over blocks.

Names are compared only within a block: the same first ``prefix`` characters of the ``core`` name
(typos rarely hit the first letters; word-order changes and translations are the embedding
matcher's job) and a year within the tolerance (names without a year meet every year of their
letters). A block's comparisons are one ``cdist`` call, so the cost grows with the sizes of matching
blocks, not with catalog x KG.
The scorer is configurable; ``token_sort_ratio`` is the default, chosen by ``bench/align.py``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from kg_build.align.base import Side, best_pairs, empty_pairs, scored_pairs

SCORERS = {
    "ratio": fuzz.ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
    "QRatio": fuzz.QRatio,
}


class FuzzyMatch:
    method = "fuzzy"

    def __init__(self, *, scorer: str = "token_sort_ratio", cutoff: float = 0.85, year_tolerance: int = 1,
                 prefix: int = 2, workers: int = -1) -> None:
        if scorer not in SCORERS:
            raise ValueError(f"unknown fuzzy scorer {scorer!r}: choose one of {', '.join(SCORERS)}")
        self.scorer, self.cutoff, self.year_tolerance, self.prefix, self.workers = (
            scorer, cutoff, year_tolerance, prefix, workers)

    def match(self, items: Side, entities: Side) -> pl.DataFrame:
        tol = self.year_tolerance
        key = pl.col("core").str.slice(0, self.prefix).alias("block")
        left = items.names.with_columns(key).with_row_index("row")
        right = entities.names.with_columns(key).with_row_index("row")
        dated = pl.col("year").is_not_null()
        # Blocks: the first letters and a year. An item name sits in the blocks of every year within the
        # tolerance; names without a year are compared with the whole of their letter block.
        passes = [
            (left.filter(dated).with_columns(pl.int_ranges(pl.col("year") - tol, pl.col("year") + tol + 1)
                                             .alias("block_year")).explode("block_year"),
             right.filter(dated).with_columns(pl.col("year").cast(pl.Int64).alias("block_year")),
             ["block", "block_year"]),
            (left.filter(~dated), right, ["block"]),
            (left.filter(dated), right.filter(~dated), ["block"]),
        ]
        found = [self._compare(lhs, rhs, keys) for lhs, rhs, keys in passes]
        i, j, score = (np.concatenate(parts) for parts in zip(*found, strict=True))
        if not len(i):
            return empty_pairs()
        return best_pairs(scored_pairs(left, right, i, j, score / 100.0, year_tolerance=tol))

    def _compare(self, lhs: pl.DataFrame, rhs: pl.DataFrame, keys: list[str]):  # noqa: ANN202
        """Row numbers and scores (0-100) of the pairs above the cutoff, one ``cdist`` per block."""
        blocks = lhs.group_by(keys).agg("row", "core").join(
            rhs.group_by(keys).agg("row", "core"), on=keys, suffix="_r")
        out_i, out_j, out_s = [np.zeros(0, np.uint32)], [np.zeros(0, np.uint32)], [np.zeros(0, np.uint8)]
        for rows, cores, rows_r, cores_r in blocks.select("row", "core", "row_r", "core_r").iter_rows():
            workers = self.workers if len(rows) * len(rows_r) > 100_000 else 1  # threads cost more on tiny blocks
            scores = process.cdist(cores, cores_r, scorer=SCORERS[self.scorer], score_cutoff=self.cutoff * 100,
                                   workers=workers, dtype=np.uint8)  # (n_left, n_right), 0 below the cutoff
            a, b = np.nonzero(scores)
            out_i.append(np.asarray(rows, np.uint32)[a])
            out_j.append(np.asarray(rows_r, np.uint32)[b])
            out_s.append(scores[a, b])
        return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s)
