"""The extract step and `kgrec extract` against real mirrors, including a run killed halfway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kg_build.extract import KEY
from kg_build.query import query_hash
from kg_build.sparql import PING_QUERY, SparqlClient
from pipeline.lake import Lake
from pipeline.settings import load_settings
from pipeline.steps.extract import ExtractError, extract, extract_source
from tests.conftest import free_port, kgrec
from tests.faultproxy import FaultProxy

DAY = date(2026, 11, 21)
PART = {"source": "wikidata", "run_date": "2026-11-21"}


def _settings(home: Path, **env: str):
    return load_settings(environ={"KGREC_HOME": str(home), **env})


def test_extract_step_on_the_sample_and_an_identical_rerun(tmp_path: Path, sample_mirrors):
    settings = _settings(tmp_path, **sample_mirrors)
    result = extract(settings, DAY)
    lake = Lake(tmp_path / "lake")
    manifest = lake.manifest("raw_triples", PART)
    assert manifest.row_counts == {"candidates": 629, "facts": 2_863}
    summary = manifest.extra
    assert summary["candidates"] == 203 and summary["fact_entities"] == 203
    assert summary["triples_by_relation"]["director"] == 212
    assert summary["triples_by_relation"]["cast_member"] > 600
    assert summary["queries_sent"] == summary["queries"] > 0 and summary["retried"] == 0
    assert "extract wikidata: 203 candidates" in result.summary()
    dbp = lake.manifest("raw_triples", {"source": "dbpedia", "run_date": "2026-11-21"})
    assert dbp.extra["candidates"] == 92 and dbp.extra["triples_by_relation"]["director"] > 90

    again = extract(settings, DAY)  # the same date again: from the cache, the same files
    redone = lake.manifest("raw_triples", PART)
    assert {n: f.sha256 for n, f in redone.files.items()} == {n: f.sha256 for n, f in manifest.files.items()}
    assert redone.extra["queries_sent"] == 0 and redone.extra["cache_hits"] == summary["queries"]
    assert again.sources[0].summary["fact_triples"] == 2_863


def test_standalone_command_pulls_candidates_then_facts_keeping_the_other_table(tmp_path: Path, sample_wikidata):
    out = tmp_path / "out"
    env = {"KGREC_HOME": str(tmp_path / "home")}
    done = kgrec("extract", "--source", "wikidata", "--endpoint", sample_wikidata, "--date", "2026-11-21",
                 "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "203 candidates" in done.stdout
    lake = Lake(out)
    assert lake.manifest("raw_triples", PART).row_counts == {"candidates": 629}

    entities = tmp_path / "aligned.txt"
    entities.write_text("http://www.wikidata.org/entity/Q163872\n# The Prestige\nhttp://www.wikidata.org/entity/Q190525\n")
    done = kgrec("extract", "--source", "wikidata", "--endpoint", sample_wikidata, "--entities", str(entities),
                 "--date", "2026-11-21", "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert lake.manifest("raw_triples", PART).row_counts["candidates"] == 629  # kept
    facts = lake.read("raw_triples", PART, "facts")
    directors = facts.filter(pl.col("predicate") == "http://www.wikidata.org/prop/direct/P57")
    assert set(directors["subject"]) == {"http://www.wikidata.org/entity/Q163872", "http://www.wikidata.org/entity/Q190525"}
    labels = dict(facts.filter(pl.col("predicate").str.ends_with("#label")).select("subject", "object").iter_rows())
    assert labels[directors["object"][0]] == "Christopher Nolan"


def test_clear_errors(tmp_path: Path, sample_wikidata):
    bad = tmp_path / "bad.txt"
    bad.write_text("http://www.wikidata.org/entity/Q1\nhttp://x/a> } ; DROP ALL ; #\n")
    done = kgrec("extract", "--source", "wikidata", "--endpoint", sample_wikidata, "--entities", str(bad),
                 env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 1 and f"{bad}:2:" in done.stderr
    port = free_port()
    done = kgrec("extract", "--source", "wikidata", env={
        "KGREC_HOME": str(tmp_path), "KGREC_SOURCES__WIKIDATA__MIRROR__PORT": str(port)})
    assert done.returncode == 1
    assert "Connection refused" in done.stderr and "kgrec mirror start" in done.stderr
    settings = _settings(tmp_path, KGREC_EXTRACT__FACT_ENTITIES="aligned",
                         KGREC_SOURCES__WIKIDATA__ENDPOINT=sample_wikidata)
    with pytest.raises(ExtractError, match="no alignment up to 2026-11-21"):
        extract_source(settings, DAY, "wikidata")
    assert Lake(tmp_path / "lake").partitions("raw_triples") == []  # nothing half-written


def test_aligned_mode_pulls_facts_for_the_accepted_links_of_this_source(tmp_path: Path, sample_wikidata):
    settings = _settings(tmp_path, KGREC_EXTRACT__FACT_ENTITIES="aligned",
                         KGREC_SOURCES__WIKIDATA__ENDPOINT=sample_wikidata)
    wd = "http://www.wikidata.org/entity/"
    links = pl.DataFrame({
        "item_id": ["m0006", "m0011", "m0012", "m0013"],
        "entity_iri": [wd + "Q163872", wd + "Q190525", wd + "Q25188", "http://dbpedia.org/resource/Inception"],
        "source": ["wikidata", "wikidata", "wikidata", "dbpedia"],
        "method": ["exact_id", "fuzzy", "embedding", "exact_label"],
        "score": [1.0, 0.8, 0.6, 1.0],
        "margin": [1.0, 0.3, 0.01, 1.0],
        "status": ["accepted", "accepted", "ambiguous", "accepted"],
    })
    Lake(tmp_path / "lake").write("alignment", {"run_date": "2026-11-20"}, {"links": links}, config_hash="x")
    result = extract_source(settings, DAY, "wikidata")  # the latest alignment up to the run date
    assert result.summary["fact_entities"] == 2
    facts = Lake(tmp_path / "lake").read("raw_triples", PART, "facts")
    directed = facts.filter(pl.col("predicate") == "http://www.wikidata.org/prop/direct/P57")
    assert set(directed["subject"]) == {wd + "Q163872", wd + "Q190525"}


@pytest.mark.shared
def test_a_killed_run_resumes_sending_only_unfinished_batches(tmp_path: Path, shared_wikidata: str):
    rows = SparqlClient(shared_wikidata, user_agent="kgrec-tests").select(
        "SELECT ?f WHERE { ?f <http://www.wikidata.org/prop/direct/P31> ?c } ORDER BY ?f LIMIT 400").bindings
    entities = tmp_path / "films.txt"
    entities.write_text("\n".join(r["f"]["value"] for r in rows) + "\n")

    def run(endpoint: str, home: Path) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KGREC_")}
        env |= {"KGREC_HOME": str(home), "KGREC_EXTRACT__BATCH_SIZE": "40"}  # about 180 queries
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("kgrec")), "-q", "extract", "--source", "wikidata", "--endpoint",
             endpoint, "--entities", str(entities), "--date", "2026-11-21"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    home = tmp_path / "home"
    cache = home / "cache" / "extract" / "source=wikidata" / "run_date=2026-11-21"
    with FaultProxy(shared_wikidata, delay_s=0.03) as proxy:  # slow enough to be killed halfway
        clean = run(proxy.endpoint, tmp_path / "clean")
        assert clean.wait(timeout=300) == 0, clean.stderr.read()
        clean_lake = Lake(tmp_path / "clean" / "lake")
        expected = clean_lake.read("raw_triples", PART, "facts")
        total = clean_lake.manifest("raw_triples", PART).extra["queries"]

        first = run(proxy.endpoint, home)
        deadline = time.monotonic() + 120
        while len(list(cache.glob("*/*.json"))) < total // 2:
            assert first.poll() is None, "finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        finished = {p.stem for p in cache.glob("*/*.json")}
        assert 0 < len(finished) < total
        assert Lake(home / "lake").partitions("raw_triples") == []  # nothing visible from the killed run

        proxy.delay_s = 0.0
        before = len(proxy.log)
        second = run(proxy.endpoint, home)
        assert second.wait(timeout=300) == 0, second.stderr.read()
        resent = [query_hash(proxy.endpoint, e.query) for e in proxy.log[before:] if e.query != PING_QUERY]
    assert len(resent) == total - len(finished)  # only the unfinished batches were sent
    assert not set(resent) & finished              # none of the finished ones again
    got = Lake(home / "lake").read("raw_triples", PART, "facts")
    assert got.select(KEY).equals(expected.select(KEY))
