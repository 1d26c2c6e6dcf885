"""The bundled sample: valid, current with films.toml, small, and holding the hard cases later issues need."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyoxigraph as ox
import pytest

from kg_build.catalog import load_csv
from tests.conftest import SAMPLE

WD = "http://www.wikidata.org/entity/"
WDT = "http://www.wikidata.org/prop/direct/"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"


@pytest.fixture(scope="module")
def wikidata() -> ox.Store:
    store = ox.Store()
    store.load(path=str(SAMPLE / "mirror" / "wikidata.nt"), format=ox.RdfFormat.N_TRIPLES)
    return store


@pytest.fixture(scope="module")
def items() -> pl.DataFrame:
    catalog = load_csv(SAMPLE / "catalog" / "items.csv")
    assert catalog.rejects.is_empty()
    return catalog.items


def _films(store: ox.Store, where: str = "") -> list[dict[str, str]]:
    query = f"""SELECT ?f ?label ?date ?imdb WHERE {{
        ?f <{WDT}P31> <{WD}Q11424> ; <{LABEL}> ?label ; <{WDT}P577> ?date .
        OPTIONAL {{ ?f <{WDT}P345> ?imdb }} {where} }}"""
    return [{k: (s[k].value if s[k] else None) for k in ("f", "label", "date", "imdb")} for s in store.query(query)]


def test_built_files_are_current_with_films_toml(tmp_path: Path):
    done = subprocess.run([sys.executable, str(SAMPLE / "build.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_size_and_synthetic_marking():
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024
    assert "synthetic" in (SAMPLE / "README.md").read_text().lower()


def test_catalog_has_150_real_films_with_facts(items: pl.DataFrame, wikidata: ox.Store):
    assert items.height >= 150
    films = _films(wikidata)
    assert len(films) >= 150
    for prop, at_least in (("P57", 150), ("P161", 500), ("P136", 300), ("P272", 150)):
        assert len(list(wikidata.quads_for_pattern(None, ox.NamedNode(WDT + prop), None))) >= at_least
    labelled = {s["o"].value for s in wikidata.query(f"SELECT ?o WHERE {{ ?f <{WDT}P57> ?o . ?o <{LABEL}> ?l }}")}
    directors = {s["o"].value for s in wikidata.query(f"SELECT ?o WHERE {{ ?f <{WDT}P57> ?o }}")}
    assert directors == labelled  # every object has a label


def test_hard_cases_are_present(items: pl.DataFrame, wikidata: ox.Store):
    titles = items["title"].to_list()
    assert "Dark Knight, The" in titles                                         # trailing article
    remakes = items.group_by("title").agg(pl.col("year").n_unique().alias("years")).filter(pl.col("years") > 1)
    assert {"Psycho", "Ocean's Eleven", "Scarface"} <= set(remakes["title"])     # same title, other years
    psycho = _films(wikidata, 'FILTER(str(?label) = "Psycho")')
    assert sorted(f["date"][:4] for f in psycho) == ["1960", "1998"]
    no_imdb = items.filter(pl.col("imdb_id").is_null())
    assert "Metropolis" in no_imdb["title"].to_list()                            # catalog row without IMDb id
    metropolis = _films(wikidata, 'FILTER(str(?label) = "Metropolis")')
    assert metropolis[0]["imdb"]                                                 # ... that the KG does have
    assert any(not t.isascii() for t in titles)                                  # non-ASCII titles
    assert "Amelie (Fabuleux destin d'Amélie Poulain, Le)" in titles
    kg_titles = {f["label"] for f in _films(wikidata)}
    assert {"Sting, The", "Rain Man"} <= set(titles) and not {"The Sting", "Rain Man"} & kg_titles  # no KG entity
    assert {"Psycho II", "Seven Pounds"} <= kg_titles and not {"Psycho II", "Seven Pounds"} & set(titles)


def test_dbpedia_sample_parses_with_disambiguated_labels():
    store = ox.Store()
    store.load(path=str(SAMPLE / "mirror" / "dbpedia.nt"), format=ox.RdfFormat.N_TRIPLES)
    labels = {s["l"].value for s in store.query(
        "SELECT ?l WHERE { ?f a <http://dbpedia.org/ontology/Film> ; <http://www.w3.org/2000/01/rdf-schema#label> ?l }")}
    assert {"Psycho (1960 film)", "Psycho (1998 film)"} <= labels
    assert len(labels) >= 50


@pytest.mark.shared
def test_every_real_namespace_iri_is_in_the_shared_data(shared_data: Path):
    real = ("http://www.wikidata.org/entity/", "http://dbpedia.org/resource/")
    used = set()
    for name in ("wikidata.nt", "dbpedia.nt"):
        with open(SAMPLE / "mirror" / name, "rb") as fh:
            for triple in ox.parse(fh, format=ox.RdfFormat.N_TRIPLES):
                for term in (triple.subject, triple.object):
                    if isinstance(term, ox.NamedNode) and term.value.startswith(real):
                        used.add(term.value)
    known = set()
    for path in [*shared_data.glob("wikidata-movielens-small/*.nt.gz"), *shared_data.glob("dbpedia-movielens-1m/*.nt.gz")]:
        with gzip.open(path, "rb") as fh:
            for triple in ox.parse(fh, format=ox.RdfFormat.N_TRIPLES):
                known.add(triple.subject.value)
                if isinstance(triple.object, ox.NamedNode):
                    known.add(triple.object.value)
    assert len(used) > 500
    assert used <= known, sorted(used - known)[:10]
