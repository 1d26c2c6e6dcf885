"""Implicit feedback and reproducible splits: train / valid / test per user, plus cold-start items.

- :func:`implicit`: one row per (user, item), the strongest interaction kept, those below the
  threshold dropped (MovieLens: rating >= 4; Last.FM: every listen).
- :func:`split`: a share of the items (``cold_items``) is held out whole, every interaction with
  them going to ``cold_test``, so the KG's value on new items can be measured. The rest is split per
  user: by a seeded random order, or by time (``temporal``: the latest interactions are the test).
  Every user with an interaction outside the cold items keeps at least one in ``train``.

The random order comes from numpy's seeded PCG64 stream over rows sorted by (user, item), so the
same input, seed and ratios give the same split on any machine and library version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

SPLITS = ("train", "valid", "test", "cold_test")


@dataclass(frozen=True)
class SplitConfig:
    valid: float = 0.1
    test: float = 0.2
    cold_items: float = 0.0
    temporal: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        shares = {"valid": self.valid, "test": self.test, "cold_items": self.cold_items}
        bad = {k: v for k, v in shares.items() if not 0 <= v < 1}
        if bad or self.valid + self.test >= 1:
            raise ValueError(f"split shares must be in [0, 1) and valid + test < 1, got {shares}")


def implicit(interactions: pl.DataFrame, *, threshold: float | None) -> pl.DataFrame:
    """``user_id, item_id, weight, ts``: deduplicated (strongest kept, then latest), thresholded."""
    strongest = (
        interactions.sort(["user_id", "item_id", "weight", "ts"], descending=[False, False, True, True],
                          nulls_last=True)
        .unique(["user_id", "item_id"], keep="first", maintain_order=True)
    )
    return strongest if threshold is None else strongest.filter(pl.col("weight") >= threshold)


def split(interactions: pl.DataFrame, config: SplitConfig) -> pl.DataFrame:
    """``user_id, item_id, weight, ts, split`` for deduplicated interactions."""
    if config.temporal and interactions["ts"].null_count():
        raise ValueError(f"a temporal split needs timestamps: {interactions['ts'].null_count():,} interactions "
                         "have none")
    rng = np.random.default_rng(config.seed)
    items = interactions["item_id"].unique().sort()
    cold = items.filter(pl.Series(rng.random(items.len()) < config.cold_items)) if items.len() else items
    rows = interactions.sort("user_id", "item_id").with_columns(pl.Series("_r", rng.random(interactions.height)))
    is_cold = pl.col("item_id").is_in(cold.implode())
    warm = rows.filter(~is_cold)
    order = ["ts", "item_id"] if config.temporal else ["_r"]
    warm = warm.sort(["user_id", *order]).with_columns(
        pl.int_range(pl.len()).over("user_id").alias("_pos"), pl.len().over("user_id").alias("_n"),
    )
    n_test = (pl.col("_n") * config.test).floor()
    n_valid = (pl.col("_n") * config.valid).floor()
    n_train = pl.max_horizontal(pl.lit(1), pl.col("_n") - n_test - n_valid)
    warm = warm.with_columns(
        pl.when(pl.col("_pos") < n_train).then(pl.lit("train"))
        .when(pl.col("_pos") < n_train + n_valid).then(pl.lit("valid"))
        .otherwise(pl.lit("test")).alias("split")
    )
    out = pl.concat([warm.drop("_pos", "_n"), rows.filter(is_cold).with_columns(pl.lit("cold_test").alias("split"))])
    return out.drop("_r").sort("user_id", "item_id")
