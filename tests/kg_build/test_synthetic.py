from __future__ import annotations

import polars as pl
import pytest

from kg_build.catalog import load_csv
from kg_build.schema import INTERACTIONS, polars_schema
from kg_build.synthetic import generate
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def items() -> pl.DataFrame:
    return load_csv(SAMPLE / "catalog" / "items.csv").items


def test_same_seed_same_users_other_seed_other_users(items: pl.DataFrame):
    a = generate(items, users=120, seed=3)
    b = generate(items, users=120, seed=3)
    c = generate(items, users=120, seed=4)
    assert a.interactions.equals(b.interactions) and a.profiles.equals(b.profiles)
    assert not a.interactions.equals(c.interactions)


def test_contract_and_basic_shape(items: pl.DataFrame):
    synthetic = generate(items, users=200, seed=1, mean_items=20)
    log = synthetic.interactions
    assert log.schema == polars_schema(INTERACTIONS)
    assert log["user_id"].n_unique() == 200
    assert not log.select(pl.struct("user_id", "item_id").is_duplicated()).to_series().any()
    assert log.group_by("user_id").len()["len"].min() >= 5
    assert set(log["item_id"]) <= set(items["item_id"])
    assert log["weight"].is_between(1.0, 5.0).all()
    counts = log.group_by("user_id").len().join(synthetic.profiles, on="user_id")
    assert (counts["len"] == counts["n_items"]).all()


def test_users_favour_their_taste_far_above_its_base_rate(items: pl.DataFrame):
    synthetic = generate(items, users=300, seed=7, affinity=0.8)
    attrs = pl.concat([
        items.select("item_id", pl.lit(kind).alias("taste_kind"), pl.col(col).alias("taste_value")).explode("taste_value")
        for col, kind in (("directors", "director"), ("cast", "actor"), ("genres", "genre"))
    ])
    hits = synthetic.interactions.join(
        synthetic.profiles, on="user_id").join(attrs, on=["item_id", "taste_kind", "taste_value"], how="semi")
    share = hits.height / synthetic.interactions.height
    base = (
        synthetic.profiles.join(attrs.group_by("taste_kind", "taste_value").len(), on=["taste_kind", "taste_value"])
        .select((pl.col("len") / items.height).mean()).item()
    )
    assert share > 0.7                   # most of what a user did is their taste
    assert share / base > 5              # ... far above chance
    assert set(synthetic.profiles["taste_kind"]) == {"director", "actor", "genre"}
    taste_ratings = hits["weight"]
    assert taste_ratings.min() >= 4.0    # and they liked it


def test_a_catalog_without_attributes_is_refused(items: pl.DataFrame):
    with pytest.raises(ValueError, match="list columns"):
        generate(items.select("item_id", "title"), users=5, seed=1)
