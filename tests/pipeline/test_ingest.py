from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipeline.lake import Lake, run_date_key
from pipeline.settings import ConfigError, load_settings
from pipeline.steps.ingest import ingest

DAY = date(2026, 11, 21)


def test_ingest_sample_writes_catalog_and_synthetic_interactions(tmp_path: Path):
    settings = load_settings(environ={"KGREC_HOME": str(tmp_path)})
    result = ingest(settings, DAY)
    lake = Lake(tmp_path / "lake")
    key = run_date_key(DAY)
    assert (result.items, result.users, result.rejects) == (201, 300, 0)
    assert result.catalog_path == str(tmp_path / "lake" / "catalog" / "run_date=2026-11-21")
    items = lake.read("catalog", key, "items")
    log = lake.read("interactions", key, "interactions")
    assert items.height == 201 and log.height == result.interactions
    assert lake.read("interactions", key, "synthetic_users").height == 300
    manifest = lake.manifest("catalog", key)
    assert manifest.inputs[0]["path"].endswith("data/sample/catalog/items.csv")
    assert manifest.extra == {"catalog": "items.csv", "format": "csv"}

    again = ingest(settings, DAY)  # a rerun replaces the date's partitions with the same content
    assert again == result
    assert lake.partitions("catalog") == [key]
    assert lake.read("interactions", key, "interactions").equals(log)


def test_ingest_quarantines_bad_rows_to_the_side_file(tmp_path: Path):
    items = tmp_path / "shop" / "items.csv"
    items.parent.mkdir()
    items.write_text("item_id,title,year\n1,Heat,1995\n2,,1990\n1,Heat again,1995\n3,Alive,1993\n")
    log = tmp_path / "shop" / "log.csv"
    log.write_text("user_id,item_id,weight\nu1,1,5\nu1,9,4\nu2,3,1\n")
    settings = load_settings(environ={
        "KGREC_HOME": str(tmp_path / "home"), "KGREC_CATALOG__PATH": str(items), "KGREC_CATALOG__INTERACTIONS": str(log),
    })
    result = ingest(settings, DAY)
    assert (result.items, result.interactions, result.rejects) == (2, 2, 3)
    rejects = Lake(settings.lake_root).read("catalog", run_date_key(DAY), "rejects")
    assert rejects.select("line", "reason").rows() == [
        (3, "empty title"), (4, "duplicate item_id 1 (first on line 2)"), (3, "item_id 9 is not in the catalog")]
    assert rejects["file"].to_list() == [str(items)] * 2 + [str(log)]


@pytest.mark.shared
def test_ingest_movielens_profile(shared_data: Path, tmp_path: Path):
    settings = load_settings("movielens", environ={"KGREC_HOME": str(tmp_path)})
    result = ingest(settings, DAY)
    assert (result.items, result.interactions, result.users, result.rejects) == (9_742, 100_836, 610, 0)
    lake = Lake(tmp_path / "lake")
    assert lake.manifest("interactions", run_date_key(DAY)).row_counts == {"interactions": 100_836}
    assert len(lake.manifest("catalog", run_date_key(DAY)).inputs) == 3
    assert lake.read("catalog", run_date_key(DAY), "items").filter(pl.col("imdb_id").is_null()).is_empty()


def test_catalog_limit_keeps_the_first_items_in_file_order_and_only_their_interactions(tmp_path: Path):
    full = ingest(load_settings(environ={"KGREC_HOME": str(tmp_path / "full")}), DAY)
    settings = load_settings(overrides={"home": str(tmp_path / "limited"), "catalog": {"limit": 50}}, environ={})
    assert settings.catalog.limit == 50 and settings.catalog.interactions == "synthetic"
    result = ingest(settings, DAY)
    key = run_date_key(DAY)
    whole, lake = Lake(tmp_path / "full" / "lake"), Lake(settings.lake_root)
    file_order = pl.read_csv(settings.catalog.path, infer_schema_length=0)["item_id"].to_list()
    items = lake.read("catalog", key, "items")
    assert items["item_id"].to_list() == file_order[:50] and result.items == 50
    assert items.equals(whole.read("catalog", key, "items").head(50))
    # the same seeded users, with exactly their interactions with the kept items
    expected = whole.read("interactions", key, "interactions").filter(pl.col("item_id").is_in(file_order[:50]))
    log = lake.read("interactions", key, "interactions")
    assert 0 < log.height == result.interactions < full.interactions
    assert log.equals(expected)
    assert set(log["item_id"]) <= set(file_order[:50])
    assert result.users == log["user_id"].n_unique()
    assert lake.manifest("catalog", key).row_counts["items"] == 50


def test_catalog_limit_above_the_catalog_size_keeps_everything(tmp_path: Path):
    full = ingest(load_settings(environ={"KGREC_HOME": str(tmp_path / "full")}), DAY)
    limited = ingest(load_settings(environ={"KGREC_HOME": str(tmp_path / "limited"), "KGREC_CATALOG__LIMIT": "1000"}),
                     DAY)
    assert (limited.items, limited.interactions, limited.users) == (full.items, full.interactions, full.users) \
        == (201, full.interactions, 300)
    key = run_date_key(DAY)
    assert Lake(tmp_path / "limited" / "lake").read("interactions", key, "interactions").equals(
        Lake(tmp_path / "full" / "lake").read("interactions", key, "interactions"))


def test_catalog_limit_with_an_interactions_csv(tmp_path: Path):
    items = tmp_path / "shop" / "items.csv"
    items.parent.mkdir()
    items.write_text("item_id,title,year\n30,Heat,1995\n20,,1990\n10,Alive,1993\n40,Ronin,1998\n")
    log = tmp_path / "shop" / "log.csv"
    log.write_text("user_id,item_id,weight\nu1,30,5\nu1,40,4\nu2,10,1\nu2,40,2\nu3,40,3\nu3,99,1\n")
    settings = load_settings(environ={
        "KGREC_HOME": str(tmp_path / "home"), "KGREC_CATALOG__PATH": str(items),
        "KGREC_CATALOG__INTERACTIONS": str(log), "KGREC_CATALOG__LIMIT": "2",
    })
    result = ingest(settings, DAY)
    lake, key = Lake(settings.lake_root), run_date_key(DAY)
    assert lake.read("catalog", key, "items")["item_id"].to_list() == ["30", "10"]  # file order, the bad row skipped
    kept = lake.read("interactions", key, "interactions").select("user_id", "item_id", "weight").rows()
    assert [(u, i, float(w)) for u, i, w in kept] == [("u1", "30", 5.0), ("u2", "10", 1.0)]
    assert (result.items, result.interactions, result.users, result.rejects) == (2, 2, 2, 2)


@pytest.mark.parametrize("source", ["overrides", "environment"])
def test_catalog_limit_zero_is_a_config_error(tmp_path: Path, source: str):
    with pytest.raises(ConfigError, match=r"catalog\.limit: .*greater than or equal to 1") as failure:
        if source == "overrides":
            load_settings(overrides={"catalog": {"limit": 0}}, environ={"KGREC_HOME": str(tmp_path)})
        else:
            load_settings(environ={"KGREC_HOME": str(tmp_path), "KGREC_CATALOG__LIMIT": "0"})
    assert ("KGREC_CATALOG__LIMIT" in str(failure.value)) == (source == "environment")
    assert not (tmp_path / "lake").exists()
