from __future__ import annotations

from pathlib import Path

from pipeline.lake import Lake
from tests.conftest import free_port, kgrec


def test_help_lists_the_subcommands():
    done = kgrec("--help")
    assert done.returncode == 0
    for command in ("run", "ingest", "mirror", "config", "lake"):
        assert f"    {command} " in done.stdout


def test_run_with_mirrors_end_to_end_on_the_sample(tmp_path: Path):
    env = {
        "KGREC_HOME": str(tmp_path),
        "KGREC_SOURCES__WIKIDATA__MIRROR__PORT": str(free_port()),
        "KGREC_SOURCES__DBPEDIA__MIRROR__PORT": str(free_port()),
    }
    done = kgrec("run", "--with-mirrors", "--date", "2026-11-20", env=env)
    assert done.returncode == 0, done.stderr
    assert "mirror wikidata: 3,289 triples" in done.stdout
    assert "mirror dbpedia: 965 triples" in done.stdout
    assert "ingest: 201 items" in done.stdout
    lake = Lake(tmp_path / "lake")
    assert lake.partitions("catalog") == [{"run_date": "2026-11-20"}]
    assert lake.partitions("interactions") == [{"run_date": "2026-11-20"}]
    status = kgrec("mirror", "status", env=env)
    assert "no mirrors started by kgrec" in status.stdout  # both were stopped again
    listing = kgrec("lake", env=env)
    assert "run_date=2026-11-20: items 201, rejects 0" in listing.stdout


def test_a_config_error_exits_2_naming_the_key():
    done = kgrec("config", env={"KGREC_CATALOG__FORMAT": "xlsx"})
    assert done.returncode == 2
    assert "catalog.format" in done.stderr and "KGREC_CATALOG__FORMAT" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_date_is_refused():
    done = kgrec("ingest", "--date", "2026-13-01")
    assert done.returncode == 2 and "not a date (YYYY-MM-DD): '2026-13-01'" in done.stderr


def test_a_missing_catalog_is_a_clear_error(tmp_path: Path):
    done = kgrec("ingest", env={"KGREC_HOME": str(tmp_path), "KGREC_CATALOG__PATH": str(tmp_path / "none.csv")})
    assert done.returncode == 1
    assert f"kgrec: error: {tmp_path / 'none.csv'}: file not found" in done.stderr


def test_config_masks_secrets():
    done = kgrec("-p", "live", "config", env={
        "KGREC_CONTACT": "ops@example.org", "KGREC_WAREHOUSE__URL": "postgresql+psycopg://u:hunter2@db/kg"})
    assert done.returncode == 0
    assert "hunter2" not in done.stdout and "u:***@db/kg" in done.stdout
