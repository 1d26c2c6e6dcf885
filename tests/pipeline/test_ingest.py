from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipeline.lake import Lake, run_date_key
from pipeline.settings import load_settings
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
