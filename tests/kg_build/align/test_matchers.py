"""Each matcher on hand-made sides: what it finds, how it scores, what it must not find."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from kg_build.align.base import ALT_NAME, NEAR_YEAR, NO_YEAR
from kg_build.align.embedding import EmbeddingMatch, Encoder
from kg_build.align.exact import ARTICLE, SQUASHED, ExactId, ExactLabel
from kg_build.align.fuzzy import FuzzyMatch
from tests.kg_build.align.helpers import WD, film, items, sides, triples


def scores(pairs: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(i, e.removeprefix(WD)): round(s, 3) for i, e, s in pairs.select("item_id", "entity_iri", "score").rows()}


def test_exact_id_links_shared_imdb_ids_only():
    catalog = items(("1", "Toy Story", 1995, "tt0114709"), ("2", "Heat", 1995, "tt9999999"), ("3", "Heat", 1995))
    candidates = triples(film("Q171048", "Toy Story", 1995, imdb="tt0114709"),
                         film("Q1", "Heat", 1995, imdb="tt0113277"))
    assert scores(ExactId().match(*sides(catalog, candidates))) == {("1", "Q171048"): 1.0}


@pytest.mark.parametrize(
    ("title", "year", "label", "entity_year", "alts", "expected"),
    [
        ("Dark Knight, The", 2008, "The Dark Knight", 2008, (), 1.0),
        ("Dark Knight, The", 2008, "The Dark Knight", 2009, (), NEAR_YEAR),  # release vs publication year
        ("Dark Knight, The", 2008, "The Dark Knight", 2011, (), None),  # too far apart: another film
        ("Dark Knight, The", None, "The Dark Knight", 2008, (), NO_YEAR),
        ("Dark Knight", 2008, "The Dark Knight", 2008, (), ARTICLE),  # equal up to the article: weaker
        ("Mask, The", None, "Mask (film)", None, (), NO_YEAR * ARTICLE),  # below accept: to review
        ("A-Team", None, "The Team (band)", None, (), None),  # "A" of "A-Team" is no article
        ("Mute Math", None, "Mutemath", None, (), NO_YEAR * SQUASHED),
        ("M*A*S*H", 1970, "MASH (film)", 1970, (), SQUASHED),
        ("Ke$ha", None, "Kesha", None, (), NO_YEAR),
        ("Rocky II", 1979, "Rocky 2", 1979, (), 1.0),
        ("Thirty Seconds to Mars", None, "30 Seconds to Mars", None, (), NO_YEAR),
        ("Seven (a.k.a. Se7en)", 1995, "Se7en", 1995, (), ALT_NAME),  # through an alternative title
        ("Se7en", 1995, "Seven", 1995, ("Se7en",), ALT_NAME),  # through an altLabel
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, "Le Fabuleux Destin d'Amélie Poulain", 2001, (),
         ALT_NAME),
        ("Tom & Jerry", 1992, "Tom and Jerry", 1992, (), 1.0),
        ("Psycho", 1960, "Psycho II", 1983, (), None),
        ("Comma", None, "City (Comma) State", None, (), None),  # a KG label's parentheses are no alt name
    ],
)
def test_exact_label(title, year, label, entity_year, alts, expected):
    catalog = items(("1", title, year))
    candidates = triples(film("Q1", label, entity_year, alts=alts))
    got = scores(ExactLabel(year_tolerance=1).match(*sides(catalog, candidates)))
    assert got == ({} if expected is None else {("1", "Q1"): round(expected, 3)})


def test_exact_label_keeps_both_films_of_a_title_for_the_cascade_to_decide():
    catalog = items(("1", "Psycho", 1960), ("2", "Psycho", None))
    candidates = triples(film("Q1", "Psycho", 1960), film("Q2", "Psycho", 1998))
    got = scores(ExactLabel().match(*sides(catalog, candidates)))
    assert got == {("1", "Q1"): 1.0, ("2", "Q1"): NO_YEAR, ("2", "Q2"): NO_YEAR}


def test_fuzzy_finds_spelling_variants_within_blocks_and_years():
    catalog = items(("1", "Kill Bill: Vol. 1", 2003), ("2", "Shawshank Redemtion, The", 1994),
                    ("3", "Psycho", 1960), ("4", "Xhawshank Redemption", 1994))
    candidates = triples(film("Q1", "Kill Bill: Volume 1", 2003), film("Q2", "The Shawshank Redemption", 1994),
                         film("Q3", "Psycho II", 1983))
    got = scores(FuzzyMatch(scorer="token_sort_ratio", cutoff=0.85).match(*sides(catalog, candidates)))
    assert set(got) == {("1", "Q1"), ("2", "Q2")}  # a typo in the first letters falls outside the block
    assert 0.85 <= got[("1", "Q1")] < 1 and got[("2", "Q2")] > 0.95


def test_fuzzy_and_embedding_never_pair_a_film_with_its_sequel(tmp_path):
    catalog = items(("1", "Basic Instinct", None), ("2", "Terminator 2", 1991))
    candidates = triples(film("Q1", "Basic Instinct 2", 2006), film("Q2", "The Terminator", 1991))
    item_side, entity_side = sides(catalog, candidates)
    assert FuzzyMatch(cutoff=0.5).match(item_side, entity_side).is_empty()
    assert EmbeddingMatch(encoder=Encoder(cache_dir=tmp_path), cutoff=0.3).match(item_side, entity_side).is_empty()


def test_fuzzy_rejects_an_unknown_scorer():
    with pytest.raises(ValueError, match="unknown fuzzy scorer 'levenshtein'"):
        FuzzyMatch(scorer="levenshtein")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Encoder:
    return Encoder(device="cpu", cache_dir=tmp_path_factory.mktemp("vectors"))


def test_embedding_matches_subtitles_edit_distance_misses(encoder: Encoder):
    catalog = items(("1", "Lord of the Rings: The Fellowship of the Ring, The", 2001), ("2", "Sting, The", 1973))
    candidates = triples(film("Q1", "The Fellowship of the Ring", 2001),
                         film("Q2", "The Lord of the Rings: The Two Towers", 2002),
                         film("Q3", "Stingray", 1973))
    item_side, entity_side = sides(catalog, candidates)
    assert FuzzyMatch().match(item_side, entity_side).is_empty()
    got = scores(EmbeddingMatch(encoder=encoder, cutoff=0.85).match(item_side, entity_side))
    assert set(got) == {("1", "Q1")} and got[("1", "Q1")] > 0.9  # "The Sting" is not "Stingray"


def test_embedding_vectors_come_from_the_cache_on_the_next_run(encoder: Encoder):
    texts = ["Heat", "Toy Story", "Heat"]
    first = encoder.encode(texts)
    again = Encoder(device="cpu", cache_dir=encoder.cache_dir)
    second = again.encode(texts)
    assert again.encoded == 0 and first.shape == (3, 384)
    assert pl.Series(((first - second) ** 2).sum(axis=1)).max() < 1e-10
    assert list(Path(encoder.cache_dir, "all-MiniLM-L6-v2").glob("part-*.parquet"))
