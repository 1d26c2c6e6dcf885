"""Fuzzy matching with rapidfuzz, vectorised with ``process.cdist`` over blocks.

Names are compared only within a block: the same first ``prefix`` characters of the ``core`` name
(typos rarely hit the first letters; word-order changes and translations are the embedding
matcher's job). A block's comparisons are one ``cdist`` call on all cores, so the cost grows with
the sizes of matching blocks, not with catalog x KG. Years are then checked within the block.
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
        key = pl.col("core").str.slice(0, self.prefix).alias("block")
        left = items.names.with_columns(key)
        blocks = entities.names.with_columns(key).partition_by("block", as_dict=True)
        right = {block_key: block for (block_key,), block in blocks.items()}
        found = []
        for (block_key,), block in left.partition_by("block", as_dict=True).items():
            other = right.get(block_key)
            if other is not None:
                found.append(self._compare(block, other))
        return best_pairs(pl.concat(found)) if found else empty_pairs()

    def _compare(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        scores = process.cdist(
            left["core"].to_list(), right["core"].to_list(), scorer=SCORERS[self.scorer],
            score_cutoff=self.cutoff * 100, workers=self.workers, dtype=np.uint8,
        )  # (n_left, n_right), 0 below the cutoff
        i, j = np.nonzero(scores)
        return scored_pairs(left, right, i, j, scores[i, j] / 100.0, year_tolerance=self.year_tolerance)
