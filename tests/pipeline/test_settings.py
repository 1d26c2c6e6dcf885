from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import PROJECT_ROOT, ConfigError, Settings, config_hash, load_settings


def test_default_profile_is_sample_with_local_mirrors_and_duckdb_under_home():
    s = load_settings(environ={})
    assert s.profile == "sample"
    assert s.home == PROJECT_ROOT / "var"
    assert s.catalog.format == "csv" and s.catalog.path == PROJECT_ROOT / "data/sample/catalog/items.csv"
    assert s.catalog.interactions == "synthetic"
    assert s.sources["wikidata"].endpoint == "http://127.0.0.1:7878/query"
    assert all(src.is_local for src in s.sources.values())
    assert s.warehouse.url == f"duckdb:///{PROJECT_ROOT / 'var' / 'warehouse.duckdb'}"
    assert s.device == "auto"


def test_profile_from_environment_and_movielens_paths():
    s = load_settings(environ={"KGREC_PROFILE": "movielens"})
    assert s.profile == "movielens"
    assert s.catalog.path == (PROJECT_ROOT / "../shared/data/movielens-latest-small").resolve()
    assert s.sources["dbpedia"].mirror.files == ["../shared/data/dbpedia-movielens-1m/*.nt.gz"]


def test_environment_overrides_nested_keys_and_home_moves_the_warehouse(tmp_path: Path):
    s = load_settings(environ={
        "KGREC_HOME": str(tmp_path),
        "KGREC_CATALOG__SYNTHETIC__USERS": "12",
        "KGREC_SOURCES__WIKIDATA__MIRROR__FILES": '["x.nt", "y.nt.gz"]',
    })
    assert s.home == tmp_path
    assert s.catalog.synthetic.users == 12
    assert s.sources["wikidata"].mirror.files == ["x.nt", "y.nt.gz"]
    assert s.warehouse.url == f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    assert s.lake_root == tmp_path / "lake"


def test_overrides_beat_environment():
    s = load_settings(overrides={"seed": 5}, environ={"KGREC_SEED": "9"})
    assert s.seed == 5


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"KGREC_CATALOG__FORMAT": "xml"},
         ["catalog.format", "'csv', 'movielens', 'movielens-1m' or 'lastfm'", "'xml'", "KGREC_CATALOG__FORMAT"]),
        ({"KGREC_DEVICE": "gpu"}, ["device", "auto|cpu|cuda", "KGREC_DEVICE"]),
        ({"KGREC_SOURCES__WIKIDATA__MIRROR__PORT": "80"}, ["sources.wikidata.mirror.port", "1024"]),
        ({"KGREC_SOURCES__WIKIDATA__KIND": "freebase"}, ["sources.wikidata.kind", "'freebase' is not defined",
                                                         "dbpedia, wikidata"]),
        ({"KGREC_EXTRACT__DOMAIN": "books"}, ["extract.domain", "'books'", "films, music-artists"]),
        ({"KGREC_EXTRACT__DEPTH": "3"}, ["extract.depth", "less than or equal to 2"]),
        ({"KGREC_CATALOG__SYNTHETIC__AFFINITY": "2"}, ["catalog.synthetic.affinity", "less than or equal to 1"]),
        ({"KGREC_WAREHOUSE__URL": "mysql://u@h/db"}, ["warehouse", "mysql", "duckdb:///", "postgresql+psycopg"]),
        ({"KGREC_HOEM": "/tmp"}, ["hoem: unknown key", "KGREC_HOEM"]),
        ({"KGREC_SOURCES__WIKIDATA__ENDPOINT": "ftp://x/sparql"}, ["sources.wikidata", "http(s) URL"]),
        ({"KGREC_ALIGN__REVIEW": "0.95"}, ["align", "review (0.95) must not exceed accept (0.9)"]),
        ({"KGREC_ALIGN__MATCHERS": '["exact_label", "soundex"]'}, ["align.matchers.1", "'soundex'"]),
        ({"KGREC_ALIGN__FUZZY_SCORER": "jaro"}, ["align.fuzzy_scorer", "'token_sort_ratio'"]),
        ({"KGREC_KG__VALID": "0.5", "KGREC_KG__TEST": "0.5"}, ["kg", "valid + test must be below 1"]),
        ({"KGREC_KG__COLD_ITEMS": "1.5"}, ["kg.cold_items", "less than 1", "KGREC_KG__COLD_ITEMS"]),
        ({"KGREC_KG__MIN_TAIL_DEGREE": "0"}, ["kg.min_tail_degree", "greater than or equal to 1"]),
    ],
)
def test_invalid_config_names_key_allowed_values_and_source(environ: dict[str, str], expected: list[str]):
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    for fragment in expected:
        assert fragment in str(err.value)


def test_all_errors_are_reported_together():
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"KGREC_DEVICE": "tpu", "KGREC_SEED": "many"})
    assert "device" in str(err.value) and "seed" in str(err.value)


def test_unknown_profile_lists_the_builtin_ones():
    with pytest.raises(ConfigError, match=r"unknown profile 'prod': choose one of live, movielens, sample"):
        load_settings("prod", environ={})


def test_live_profile_needs_a_contact_for_public_endpoints():
    with pytest.raises(ConfigError, match="KGREC_CONTACT"):
        load_settings("live", environ={})
    s = load_settings("live", environ={"KGREC_CONTACT": "ops@example.org",
                                       "KGREC_WAREHOUSE__URL": "postgresql+psycopg://kg:s3cret@db:5432/kg"})
    assert s.sources["wikidata"].endpoint == "https://query.wikidata.org/sparql"
    assert not s.sources["wikidata"].is_local
    assert s.user_agent.endswith("(ops@example.org)")
    assert s.redacted()["warehouse"]["url"] == "postgresql+psycopg://kg:***@db:5432/kg"
    assert "s3cret" not in str(s.redacted())


def test_profile_file_resolves_relative_paths_against_its_folder(tmp_path: Path):
    profile = tmp_path / "shop.toml"
    profile.write_text(
        'home = "state"\n[catalog]\nformat = "csv"\npath = "exports/items.csv"\n'
        '[sources.wikidata]\nkind = "wikidata"\nmirror = { port = 9000, files = ["kg.nt"] }\n'
    )
    s = load_settings(str(profile), environ={})
    assert s.home == tmp_path / "state"
    assert s.catalog.path == tmp_path / "exports/items.csv"
    assert s.profile == str(profile)


def test_broken_toml_names_the_file(tmp_path: Path):
    profile = tmp_path / "bad.toml"
    profile.write_text("[catalog\nformat = 'csv'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_settings(str(profile), environ={})


def test_config_hash_is_stable_and_tracks_values():
    a = load_settings(environ={})
    b = load_settings(environ={})
    c = load_settings(environ={"KGREC_CATALOG__SYNTHETIC__SEED": "8"})
    assert config_hash(a) == config_hash(b)
    assert config_hash(a.catalog) != config_hash(c.catalog)
    assert isinstance(a, Settings)
