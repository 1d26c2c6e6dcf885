"""The KG of ml-latest-small + the Wikidata mirror in ../shared/data: built, validated, published twice."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline import kg_store
from pipeline.lake import Lake
from pipeline.settings import load_settings
from pipeline.steps.align import align
from pipeline.steps.build import build
from pipeline.steps.extract import extract
from pipeline.steps.ingest import ingest
from pipeline.steps.publish import publish
from pipeline.steps.validate import validate
from tests.pipeline.test_kg_steps import expected_triples_by_relation

DAY = date(2026, 11, 21)


@pytest.mark.shared
def test_movielens_kg_counts_match_the_inputs_and_a_second_run_changes_nothing(
    tmp_path: Path, shared_data: Path, shared_wikidata: str
):
    profile = tmp_path / "ml.toml"
    profile.write_text(f"""
home = "{tmp_path / 'home'}"
[catalog]
format = "movielens"
path = "{shared_data / 'movielens-latest-small'}"
[sources.wikidata]
kind = "wikidata"
endpoint = "{shared_wikidata}"
[align]
matchers = ["exact_id", "exact_label"]
[kg]
implicit_threshold = 4.0
""")
    settings = load_settings(str(profile))
    ingest(settings, DAY)
    extract(settings, DAY)
    align(settings, DAY)
    first = build(settings, DAY)
    validate(settings, DAY)
    assert publish(settings, DAY).published
    lake = Lake(settings.lake_root)
    manifest = kg_store.manifest(lake, first.version)
    by_relation = {iri: v["triples"] for iri, v in manifest.extra["triples_by_relation"].items()}
    expected = expected_triples_by_relation(lake, ["wikidata"])
    assert by_relation == expected
    assert first.counts["triples"] == sum(expected.values()) == 181_145  # of the mirror's 219,912, labels aside
    assert first.counts["items"] == 9_742 and manifest.extra["alignment"]["aligned"] == 9_549
    assert first.counts["interactions"] == 48_580  # ratings >= 4, one per (user, movie)
    vocab = {p.name: p.read_bytes() for p in (settings.lake_root / "vocab").glob("*.parquet")}

    hashes = {k: e.sha256 for k, e in manifest.files.items()}
    second = build(settings, DAY)  # the same night again, nothing changed upstream: the published version stays
    validate(settings, DAY)
    assert not publish(settings, DAY).published and kg_store.published(lake) == second.version == 1
    assert kg_store.versions(lake) == [1]
    assert {k: e.sha256 for k, e in kg_store.manifest(lake, 1).files.items()} == hashes
    assert {p.name: p.read_bytes() for p in (settings.lake_root / "vocab").glob("*.parquet")} == vocab
