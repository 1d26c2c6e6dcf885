"""Implicit feedback and splits: reproducible, leak-free, per user, temporal, and cold-start items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from kg_build.splits import SplitConfig, implicit, split


def log(n_users: int = 50, n_items: int = 200, per_user: int = 30) -> pl.DataFrame:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", f"i{(u * 7 + k * 13) % n_items}", float(1 + (u + k) % 5), start + timedelta(days=u + k))
            for u in range(n_users) for k in range(per_user)]
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "weight": pl.Float32,
                                      "ts": pl.Datetime("us", "UTC")}, orient="row")


def test_implicit_keeps_the_strongest_of_duplicates_then_thresholds():
    raw = pl.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "a", "b", "a"],
                        "weight": [2.0, 5.0, 3.0, 4.0], "ts": [None, None, None, None]},
                       schema_overrides={"ts": pl.Datetime("us", "UTC")})
    assert implicit(raw, threshold=4).select("user_id", "item_id", "weight").rows() == [
        ("u", "a", 5.0), ("v", "a", 4.0)]
    assert implicit(raw, threshold=None).height == 3


def test_random_split_is_reproducible_per_user_and_leak_free():
    data = implicit(log(), threshold=None)
    config = SplitConfig(valid=0.1, test=0.2, seed=7)
    first, again = split(data, config), split(data, config)
    assert first.equals(again)
    assert not first.equals(split(data, SplitConfig(valid=0.1, test=0.2, seed=8)))
    assert first.height == data.height
    per_user = first.group_by("user_id", "split").len().pivot("split", index="user_id", values="len")
    assert (per_user["train"] >= 1).all() and (per_user["test"] == 6).all() and (per_user["valid"] == 3).all()
    assert first.group_by("user_id", "item_id").len()["len"].max() == 1  # no pair in two splits


def test_temporal_split_puts_each_users_latest_interactions_in_test():
    data = implicit(log(), threshold=None)
    out = split(data, SplitConfig(valid=0.1, test=0.2, temporal=True))
    bounds = out.group_by("user_id").agg(
        pl.col("ts").filter(pl.col("split") == "train").max().alias("last_train"),
        pl.col("ts").filter(pl.col("split") == "test").min().alias("first_test"),
    )
    assert (bounds["last_train"] < bounds["first_test"]).all()
    with pytest.raises(ValueError, match="needs timestamps: 3 interactions have none"):
        split(data.with_columns(pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("ts"))
                                .alias("ts")), SplitConfig(temporal=True))


def test_cold_items_are_held_out_whole():
    data = implicit(log(), threshold=None)
    out = split(data, SplitConfig(cold_items=0.2, seed=3))
    cold = set(out.filter(pl.col("split") == "cold_test")["item_id"].to_list())
    assert 0.1 * 200 < len(cold) < 0.3 * 200
    assert out.filter(pl.col("item_id").is_in(list(cold)))["split"].unique().to_list() == ["cold_test"]
    with pytest.raises(ValueError, match="valid \\+ test < 1"):
        SplitConfig(valid=0.5, test=0.5)
