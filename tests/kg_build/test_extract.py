"""Candidate and fact pulls from real mirrors of ../shared/data, checked against the files themselves."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pyoxigraph as ox
import pytest

from kg_build.cache import QueryCache
from kg_build.extract import KEY, Extractor, PullSettings
from kg_build.sources import load_definitions
from kg_build.sparql import ClientSettings, SparqlClient
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.shared
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
WDT = "http://www.wikidata.org/prop/direct/"
FAST = ClientSettings(timeout_s=1.0, max_retries=4, backoff_s=0.05, backoff_max_s=0.2)
Triple = tuple[str, str, str]


def _graph(files: list[Path]) -> set[tuple[str, str, str, str | None]]:
    """(s, p, o, lang) of every statement in the files, o as its lexical value."""
    out = set()
    for path in files:
        with gzip.open(path, "rb") as fh:
            for t in ox.parse(fh, format=ox.RdfFormat.N_TRIPLES):
                o = t.object
                out.add((t.subject.value, t.predicate.value, o.value, getattr(o, "language", None)))
    return out


@pytest.fixture(scope="module")
def wikidata_graph(shared_data: Path):
    return _graph(sorted((shared_data / "wikidata-movielens-small").glob("*.nt.gz")))


@pytest.fixture(scope="module")
def wikidata():
    d = load_definitions()["wikidata"]
    return d, d.domain("films")


def _extractor(
    endpoint: str, source_domain, tmp_path: Path, settings: PullSettings = PullSettings(), client_settings=FAST
) -> Extractor:
    source, domain = source_domain
    client = SparqlClient(endpoint, user_agent="kgrec-tests", settings=client_settings, seed=3)
    return Extractor(source, domain, client, QueryCache(tmp_path / "cache"), settings)


def _triples(frame: pl.DataFrame) -> set[Triple]:
    return set(frame.select("subject", "predicate", "object").iter_rows())


def _expected_facts(graph, entities: set[str], relations: set[str]) -> set[Triple]:
    english = {None, "en"}
    hop = {(s, p, o) for s, p, o, lang in graph if s in entities and p in relations and lang in english}
    objects = {o for _, _, o in hop if o.startswith("http")}
    labels = {(s, p, o) for s, p, o, lang in graph if p == RDFS_LABEL and s in entities | objects and lang in english}
    return hop | labels


def test_wikidata_candidate_pull(shared_wikidata: str, wikidata_graph, wikidata, tmp_path: Path):
    ex = _extractor(shared_wikidata, wikidata, tmp_path, PullSettings(page_size=1000))  # 10 pages
    items = ex.candidates()
    films = {s for s, p, o, _ in wikidata_graph if p == WDT + "P31" and o == "http://www.wikidata.org/entity/Q11424"}
    assert len(items) == len(films) == 9_549 and set(items) == films
    attrs = ex.candidate_triples(items)
    wanted = {RDFS_LABEL, "http://www.w3.org/2004/02/skos/core#altLabel", WDT + "P577", WDT + "P345"}
    assert _triples(attrs) == {(s, p, o) for s, p, o, _ in wikidata_graph if s in films and p in wanted}
    imdb = attrs.filter(pl.col("predicate") == WDT + "P345")
    assert imdb.height == 9_549 and imdb["object_kind"].unique().to_list() == ["literal"]
    labels = attrs.filter(pl.col("predicate") == RDFS_LABEL)
    assert labels["lang"].unique().to_list() == ["en"]
    dates = attrs.filter(pl.col("predicate") == WDT + "P577")
    assert dates["datatype"].unique().to_list() == ["http://www.w3.org/2001/XMLSchema#dateTime"]


def test_wikidata_fact_pull_equals_the_files(shared_wikidata: str, wikidata_graph, wikidata, tmp_path: Path):
    ex = _extractor(shared_wikidata, wikidata, tmp_path)
    entities = ex.candidates()[:600]
    facts = ex.facts(entities)
    relations = {wikidata[0].expand(t) for t in wikidata[1].relations.values()}
    assert _triples(facts) == _expected_facts(wikidata_graph, set(entities), relations)
    assert facts.select(KEY).is_duplicated().sum() == 0
    assert facts.columns == ["subject", "predicate", "object", "object_kind", "lang", "datatype", "source",
                             "query_hash", "fetched_at"]
    assert facts["source"].unique().to_list() == ["wikidata"]
    assert facts.sort(KEY).equals(facts)  # sorted, so reruns write identical files


def test_dbpedia_candidates_and_facts(shared_dbpedia: str, shared_data: Path, tmp_path: Path):
    graph = _graph(sorted((shared_data / "dbpedia-movielens-1m").glob("*.nt.gz")))
    d = load_definitions()["dbpedia"]
    ex = _extractor(shared_dbpedia, (d, d.domain("films")), tmp_path)
    items = ex.candidates()
    assert len(items) == 3_084 == len({s for s, p, o, _ in graph if p == RDF_TYPE and o.endswith("/ontology/Film")})
    facts = ex.facts(items[:500])
    relations = {d.expand(t) for t in d.domain("films").relations.values()}
    assert _triples(facts) == _expected_facts(graph, set(items[:500]), relations)


def test_faults_do_not_change_the_extracted_triples(shared_wikidata: str, wikidata, tmp_path: Path):
    settings = PullSettings(batch_size=100, page_size=1000)
    clean = _extractor(shared_wikidata, wikidata, tmp_path / "clean", settings)
    entities = clean.candidates()[:300]
    expected = clean.facts(entities)

    schedule = {1: "429", 3: "503", 4: "truncate", 6: "slow", 9: "drop", 12: "cut", 15: "500", 18: "truncate",
                21: "429", 24: "drop", 27: "slow"}
    with FaultProxy(shared_wikidata, schedule, slow_s=1.5, retry_after=0.5) as proxy:
        faulty = _extractor(proxy.endpoint, wikidata, tmp_path / "faulty", settings)
        got = faulty.facts(entities)
    assert set(schedule.values()) <= set(proxy.actions())
    assert got.select(KEY).equals(expected.select(KEY))
    assert faulty.stats.halved >= 1 and faulty.stats.truncated >= 2
    assert faulty.client.stats.retried >= 7 and faulty.client.stats.failed == 0


def test_paging_batching_and_concurrency_do_not_change_the_result(shared_wikidata: str, wikidata, tmp_path: Path):
    base = _extractor(shared_wikidata, wikidata, tmp_path / "a")
    entities = base.candidates()[:80]
    expected = base.facts(entities).select(KEY)
    for i, settings in enumerate([PullSettings(page_size=60), PullSettings(batch_size=7, concurrency=4)]):
        other = _extractor(shared_wikidata, wikidata, tmp_path / f"b{i}", settings)
        assert other.facts(entities).select(KEY).equals(expected)
    assert other.stats.queries > base.stats.queries


def test_the_cache_answers_a_rerun_without_sending_anything(shared_wikidata: str, wikidata, tmp_path: Path):
    first = _extractor(shared_wikidata, wikidata, tmp_path)
    entities = first.candidates()[:100]
    expected = first.facts(entities)
    again = _extractor(shared_wikidata, wikidata, tmp_path)
    assert again.facts(entities).equals(expected)  # same rows, same query hashes and fetch times
    assert again.client.stats.sent == 0 and again.stats.cache_hits == again.stats.queries > 0


def test_second_hop_caps_hubs(shared_dbpedia_music: str, shared_data: Path, tmp_path: Path):
    d = load_definitions()["dbpedia"]
    music = (d, d.domain("music-artists"))
    cap = 4
    patient = ClientSettings(timeout_s=60.0)  # the six-rule candidate query takes a few seconds here
    ex = _extractor(shared_dbpedia_music, music, tmp_path, PullSettings(depth=2, per_entity_cap=cap), patient)
    items = ex.candidates()
    graph = _graph(sorted((shared_data / "dbpedia-lastfm-hetrec").glob("*.nt.gz")))
    dbo = "http://dbpedia.org/ontology/"
    typed = {s for s, p, o, _ in graph if p == RDF_TYPE and o in (dbo + "Band", dbo + "MusicalArtist")}
    by_property = {s for s, p, _, _ in graph if p in {dbo + x for x in (
        "genre", "associatedBand", "associatedMusicalArtist", "recordLabel")}}
    assert set(items) == typed | by_property
    assert len(by_property - typed) > 1_000  # the untyped artists the property rules find
    entities = items[:80]
    facts = ex.facts(entities)
    relations = {d.expand(t) for t in music[1].relations.values()}
    hop2 = facts.filter(~pl.col("subject").is_in(entities) & pl.col("predicate").is_in(list(relations)))
    per_subject = hop2.group_by("subject").len()
    assert per_subject["len"].max() <= cap
    assert ex.stats.hubs_capped > 0
    full = {s: n for s, n in pl.DataFrame(
        [(s, p) for s, p, _, _ in graph if p in relations], schema=["s", "p"], orient="row"
    ).group_by("s").len().iter_rows()}
    small = per_subject.filter(pl.col("len") < cap)
    assert all(full[s] == n for s, n in small.iter_rows())  # non-hubs come whole
