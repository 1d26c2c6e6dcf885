"""Small hand-made catalogs and candidate sets for the alignment tests."""

from __future__ import annotations

import polars as pl

from kg_build.align.aligner import entities_side, items_side
from kg_build.align.base import Side
from kg_build.sources import load_definitions

WIKIDATA = load_definitions()["wikidata"]
DBPEDIA = load_definitions()["dbpedia"]
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
ALT = "http://www.w3.org/2004/02/skos/core#altLabel"
DATE = "http://www.wikidata.org/prop/direct/P577"
IMDB = "http://www.wikidata.org/prop/direct/P345"
WD = "http://www.wikidata.org/entity/"


def items(*rows: tuple) -> pl.DataFrame:
    """Rows of (item_id, title, year[, imdb_id])."""
    full = [(*r, None) if len(r) == 3 else r for r in rows]
    return pl.DataFrame(full, schema={"item_id": pl.String, "title": pl.String, "year": pl.Int16,
                                      "imdb_id": pl.String}, orient="row")


def film(qid: str, label: str, year: int | None = None, *, alts: tuple[str, ...] = (), imdb: str | None = None):
    """Candidate triples of one Wikidata film."""
    rows = [(WD + qid, LABEL, label)] + [(WD + qid, ALT, a) for a in alts]
    if year is not None:
        rows.append((WD + qid, DATE, f"{year}-01-01T00:00:00Z"))
    if imdb:
        rows.append((WD + qid, IMDB, imdb))
    return rows


def triples(*films: list) -> pl.DataFrame:
    rows = [t for f in films for t in f]
    return pl.DataFrame(rows, schema={"subject": pl.String, "predicate": pl.String, "object": pl.String},
                        orient="row")


def sides(catalog: pl.DataFrame, candidates: pl.DataFrame, definition=WIKIDATA) -> tuple[Side, Side]:
    return items_side(catalog), entities_side(candidates, definition, "films")
