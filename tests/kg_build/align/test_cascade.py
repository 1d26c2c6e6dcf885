"""The cascade's decisions: accepted, ambiguous, unmatched, collisions, order, and a person's overrides."""

from __future__ import annotations

import polars as pl
import pytest

from kg_build.align.aligner import AlignConfig, AlignError, align
from kg_build.align.cascade import DETAILS, LINKS, Thresholds
from tests.kg_build.align.helpers import WD, WIKIDATA, film, items, triples

NO_EMBEDDING = AlignConfig(matchers=("exact_id", "exact_label", "fuzzy"))


def run(catalog: pl.DataFrame, candidates: pl.DataFrame, config: AlignConfig = NO_EMBEDDING, overrides=None):
    links = align(catalog, candidates, definition=WIKIDATA, domain="films", config=config, overrides=overrides).links
    assert links.schema == pl.Schema(LINKS | DETAILS)
    assert links["item_id"].is_unique().all() and links.height == catalog.height
    return {r["item_id"]: r for r in links.iter_rows(named=True)}


def short(iri: str | None) -> str | None:
    return iri.removeprefix(WD) if iri else None


def test_decisions_for_each_kind_of_item():
    catalog = items(
        ("clear", "Toy Story", 1995),
        ("remake", "Psycho", None),  # no year: the 1960 film and the 1998 remake tie
        ("typo", "Shawshank Redemtion, The", 1994),
        ("none", "The Sting", 1973),
        ("blank", "?!", 1999),  # only punctuation: no usable name
    )
    candidates = triples(
        film("Q1", "Toy Story", 1995), film("Q2", "Psycho", 1960), film("Q3", "Psycho", 1998),
        film("Q4", "The Shawshank Redemption", 1994), film("Q5", "Toy Story 2", 1999),
    )
    got = run(catalog, candidates)
    assert (short(got["clear"]["entity_iri"]), got["clear"]["method"], got["clear"]["status"]) == (
        "Q1", "exact_label", "accepted")
    assert got["clear"]["score"] == 1.0 and got["clear"]["margin"] == 1.0
    remake = got["remake"]
    assert remake["status"] == "ambiguous" and remake["margin"] == 0.0 and remake["reason"] == "close runner-up"
    assert {short(remake["entity_iri"]), short(remake["runner_up_iri"])} == {"Q2", "Q3"}
    assert (short(got["typo"]["entity_iri"]), got["typo"]["method"], got["typo"]["status"]) == (
        "Q4", "fuzzy", "accepted")
    assert got["none"]["status"] == got["blank"]["status"] == "unmatched"
    assert got["none"]["entity_iri"] is None and got["none"]["item_name"] == "The Sting"


def test_a_score_between_review_and_accept_is_ambiguous():
    catalog = items(("1", "Kill Bill: Vol. 1", 2003))
    candidates = triples(film("Q1", "Kill Bill: Volume 1", 2003))
    strict = AlignConfig(matchers=("fuzzy",), thresholds=Thresholds(accept=0.95, review=0.6))
    assert run(catalog, candidates, strict)["1"]["status"] == "ambiguous"
    assert run(catalog, candidates, strict)["1"]["reason"] == "below accept"
    assert run(catalog, candidates, AlignConfig(matchers=("fuzzy",)))["1"]["status"] == "accepted"


def test_one_entity_links_to_one_item_the_better_one():
    catalog = items(("a", "Heat", 1995), ("b", "Heat", 1996), ("c", "Heat", 1995))
    got = run(catalog, triples(film("Q1", "Heat", 1995)))
    # a and c tie at 1.0, so neither may keep the entity; b scores less and gives way too
    assert {k: v["status"] for k, v in got.items()} == {"a": "ambiguous", "b": "ambiguous", "c": "ambiguous"}
    assert got["a"]["reason"] == "tie for this entity with item c"
    assert got["b"]["reason"] == "entity taken by item a, c"
    got = run(items(("a", "Heat", 1995), ("b", "Heat", 1996)), triples(film("Q1", "Heat", 1995)))
    assert (got["a"]["status"], got["b"]["status"]) == ("accepted", "ambiguous")
    assert short(got["b"]["entity_iri"]) == "Q1" and got["b"]["reason"] == "entity taken by item a"


def test_a_tie_between_catalog_duplicates_goes_to_the_name_spelled_like_the_label():
    catalog = items(("1", "Britney Spears⊼", None), ("2", "Britney Spears", None), ("3", "britney spears", None))
    got = run(catalog, triples(film("Q1", "Britney Spears")))
    assert {k: v["status"] for k, v in got.items()} == {"1": "ambiguous", "2": "accepted", "3": "ambiguous"}
    assert got["1"]["reason"] == got["3"]["reason"] == "entity taken by item 2"


def test_earlier_matchers_decide_first_and_keep_their_entities():
    catalog = items(("id", "Heat (director's cut)", 1995, "tt0113277"), ("label", "Heat", 1995))
    candidates = triples(film("Q1", "Heat", 1995, imdb="tt0113277"), film("Q2", "Heat", 1986))
    got = run(catalog, candidates)
    assert (got["id"]["method"], short(got["id"]["entity_iri"])) == ("exact_id", "Q1")
    assert got["label"]["status"] == "unmatched"  # Q1 is taken and Q2 is nine years off


def test_overrides_win_and_take_their_items_and_entities_out_of_the_cascade():
    catalog = items(("1", "Psycho", None), ("2", "Toy Story", 1995), ("3", "Heat", 1995))
    candidates = triples(film("Q1", "Psycho", 1960), film("Q2", "Psycho", 1998), film("Q3", "Toy Story", 1995),
                         film("Q4", "Heat", 1995))
    overrides = pl.DataFrame(
        {"line": [2, 3, 4], "item_id": ["1", "3", "99"], "entity_iri": [WD + "Q1", None, WD + "Q4"],
         "note": ["the 1960 film", "not in the KG", "an item not in this catalog"], "source": [None, None, None]},
        schema={"line": pl.Int64, "item_id": pl.String, "entity_iri": pl.String, "note": pl.String,
                "source": pl.String},
    )
    got = run(catalog, candidates, overrides=overrides)
    assert (got["1"]["method"], short(got["1"]["entity_iri"]), got["1"]["status"], got["1"]["score"]) == (
        "manual", "Q1", "accepted", 1.0)
    assert got["1"]["entity_name"] == "Psycho" and got["1"]["reason"] == "override: the 1960 film"
    assert (got["3"]["method"], got["3"]["entity_iri"], got["3"]["status"]) == ("manual", None, "unmatched")
    assert got["2"]["method"] == "exact_label"


def test_bad_input_is_named():
    candidates = triples(film("Q1", "Heat", 1995))
    with pytest.raises(AlignError, match="no items"):
        run(items(), candidates)
    with pytest.raises(AlignError, match="1 item ids appear more than once \\(7\\)"):
        run(items(("7", "Heat", 1995), ("7", "Heat 2", 1995)), candidates)
    with pytest.raises(AlignError, match="no films candidates"):
        run(items(("1", "Heat", 1995)), candidates.clear())
    with pytest.raises(AlignError, match="unknown matchers fuzzzy"):
        AlignConfig(matchers=("fuzzzy",))
