"""The amazon-book-scale set: KGAT amazon-book's real interactions (counts as in its training log), the seeded
synthetic KG (exact counts, distinct triples, no self-loops, items on their mapped entities, a Zipf head), and a
published version that the train step reads back. The KG is down-scaled by keyword arguments to stay fast."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kg_build.tables import KG
from pipeline import kg_store
from pipeline.bench.amazon import SYNTHETIC_USER, load_amazon, publish, synthetic_kg
from pipeline.lake import Lake
from pipeline.settings import load_settings
from pipeline.steps.train import published_data

SMALL = {"num_entities": 30_000, "num_relations": 7, "num_triples": 40_000}
PAIR = ["user_index", "item_index"]
TRIPLE = ["head_id", "relation_id", "tail_id"]


def folder_of(shared_data: Path) -> Path:
    return shared_data / "kgat-amazon-book"


@pytest.fixture(scope="module")
def amazon(shared_data: Path) -> KG:
    return load_amazon(folder_of(shared_data), **SMALL)


def split_counts(kg: KG) -> dict[str, int]:
    return dict(kg.splits.group_by("split").len().iter_rows())


@pytest.mark.shared
def test_real_interactions_keep_kgat_counts_and_ids(amazon: KG) -> None:
    # KGAT's log: 70,679 users, 24,915 items, 652,514 train and 193,920 test pairs; 5% of train goes to valid
    assert (amazon.users.height, amazon.item_entity.height) == (70_679, 24_915)
    assert split_counts(amazon) == {"train": 619_889, "valid": 32_625, "test": 193_920}
    assert amazon.splits.select(PAIR).is_duplicated().sum() == 0
    assert amazon.interactions.select(PAIR).equals(amazon.splits.select(PAIR))
    # every user keeps a train pair; user and item indices are KGAT's remap ids, ids their org_ids
    assert amazon.splits.filter(pl.col("split") == "train")["user_index"].n_unique() == 70_679
    assert amazon.users.row(0) == (0, "A3RTKL9KB8KLID") and amazon.item_entity.row(0)[:2] == (0, "0553092626")
    assert amazon.users["user_index"].to_list() == list(range(70_679))


@pytest.mark.shared
def test_the_same_arguments_give_the_same_tables_and_synthetic_users_copy_real_train(shared_data: Path,
                                                                                      amazon: KG) -> None:
    again = load_amazon(folder_of(shared_data), **SMALL)
    assert all(again.tables()[name].equals(frame) for name, frame in amazon.tables().items())
    other = load_amazon(folder_of(shared_data), seed=7, **SMALL)
    assert not other.triples.equals(amazon.triples) and not other.splits.equals(amazon.splits)

    grown = load_amazon(folder_of(shared_data), users=75_000, **SMALL)
    assert grown.users.height == 75_000 and grown.triples.equals(amazon.triples)  # users change neither the KG ...
    real = grown.splits.filter(pl.col("user_index") < 70_679)
    assert real.equals(amazon.splits)  # ... nor the real users' splits
    extra = grown.users.filter(pl.col("user_index") >= 70_679)
    assert extra["user_id"].to_list() == [f"{SYNTHETIC_USER}{n}" for n in range(4_321)]
    copies = grown.splits.filter(pl.col("user_index") >= 70_679)
    assert copies["split"].unique().to_list() == ["train"] and copies["user_index"].n_unique() == 4_321
    # each synthetic history is exactly some real user's train history
    train = amazon.splits.filter(pl.col("split") == "train")
    histories = set(train.group_by("user_index").agg(pl.col("item_index").sort())["item_index"].map_elements(
        tuple, return_dtype=pl.Object).to_list())
    copied = copies.group_by("user_index").agg(pl.col("item_index").sort())["item_index"].to_list()
    assert all(tuple(items) in histories for items in copied)

    shrunk = load_amazon(folder_of(shared_data), users=1_000, **SMALL)
    assert shrunk.users.height == 1_000 and shrunk.splits.equals(amazon.splits.filter(pl.col("user_index") < 1_000))


def test_synthetic_kg_has_exact_counts_distinct_triples_and_items_on_their_entities() -> None:
    items = pl.DataFrame({"item_index": range(500), "item_id": [f"B{i:04}" for i in range(500)]})
    graph = synthetic_kg(items, seed=3, num_entities=2_000, num_relations=5, num_triples=60_000)
    entities, triples, item_entity = graph["entities"], graph["triples"], graph["item_entity"]
    assert entities["entity_id"].to_list() == list(range(2_000)) and graph["relations"].height == 5
    assert triples.height == 60_000 and triples.select(TRIPLE).is_duplicated().sum() == 0
    assert (triples["head_id"] != triples["tail_id"]).all()
    assert triples["head_id"].is_between(0, 1_999).all() and triples["relation_id"].is_between(0, 4).all()
    assert triples.equals(triples.sort(TRIPLE))
    # items sit on a random subset of the entities (not the first ids), labelled with their item_id
    assert item_entity["entity_id"].n_unique() == 500 and item_entity["entity_id"].to_list() != list(range(500))
    on = item_entity.join(entities, on="entity_id")
    assert (on["kind"] == "item").all() and on["label"].equals(on["item_id"], check_names=False)
    assert entities.filter(pl.col("kind") == "item").height == 500
    assert entities["iri"][7] == "urn:kgrec:synthetic:entity:7" and entities.filter(
        pl.col("kind") == "attribute")["label"].str.starts_with("synthetic entity ").all()
    # Zipf tails: the most frequent tail holds far more than the mean, heads stay near uniform
    tails = triples.group_by("tail_id").len()["len"]
    heads = triples.group_by("head_id").len()["len"]
    assert tails.max() > 50 * tails.mean() and heads.max() < 3 * heads.mean()
    assert synthetic_kg(items, seed=3, num_entities=2_000, num_relations=5, num_triples=60_000)["triples"].equals(
        triples)


def test_synthetic_kg_refuses_what_cannot_exist() -> None:
    items = pl.DataFrame({"item_index": range(10), "item_id": [str(i) for i in range(10)]})
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_kg(items, num_entities=5)
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_kg(items, num_entities=10, num_relations=1, num_triples=91)


@pytest.mark.shared
def test_publish_makes_it_the_kg_that_train_reads(shared_data: Path, tmp_path: Path) -> None:
    small = load_amazon(folder_of(shared_data), users=2_000, **SMALL)
    day = date(2026, 3, 1)
    assert publish(tmp_path, small, day) == 1
    lake = Lake(tmp_path / "lake")
    assert kg_store.published(lake) == 1
    stored = kg_store.read(lake, 1)
    assert all(stored.tables()[name].equals(frame) for name, frame in small.tables().items())
    assert kg_store.manifest(lake, 1).extra["validation"]["success"]

    version, data = published_data(load_settings(environ={"KGREC_HOME": str(tmp_path)}))
    counts = split_counts(small)
    assert version == 1 and data.summary() == {
        "users": 2_000, "items": 24_915, "entities": 30_000, "relations": 7, "triples": 40_000,
        "train": counts["train"], "valid": counts["valid"], "test": counts["test"], "cold_test": 0}

    bigger = load_amazon(folder_of(shared_data), users=8_000, **SMALL)  # another scale in the same home
    assert publish(tmp_path, bigger, day) == 2 and kg_store.published(lake) == 2
