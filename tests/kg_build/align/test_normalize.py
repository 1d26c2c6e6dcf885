"""Normalisation: the cases of the issue, one row each."""

from __future__ import annotations

import polars as pl
import pytest

from kg_build.align.normalize import core, norm, title_parts


def parts(title: str) -> dict:
    return pl.select(title_parts(pl.lit(title)).alias("p")).unnest("p").row(0, named=True)


@pytest.mark.parametrize(
    ("title", "main", "alts", "year", "kind"),
    [
        ("Dark Knight, The (2008)", "The Dark Knight", [], 2008, None),
        ("Clockwork Orange, A", "A Clockwork Orange", [], None, None),
        ("Avventura, L' (1960)", "L'Avventura", [], 1960, None),
        ("Misérables, Les (1995)", "Les Misérables", [], 1995, None),
        ("Boot, Das (1981)", "Das Boot", [], 1981, None),
        ("Postino, Il", "Il Postino", [], None, None),
        ("Seven (a.k.a. Se7en) (1995)", "Seven", ["Se7en"], 1995, None),
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Amelie", ["Le Fabuleux destin d'Amélie Poulain"],
         2001, None),
        ("Alive (1993 film)", "Alive", [], 1993, "film"),
        ("Psycho (film)", "Psycho", [], None, "film"),
        ("Nirvana (band)", "Nirvana", [], None, "band"),
        ("Prince (musician)", "Prince", [], None, "musician"),
        ("Common (rapper)", "Common", [], None, "rapper"),
        ("Low (American band)", "Low", [], None, "band"),
        ("Heroes (2006 TV series)", "Heroes", [], 2006, "tv"),
        ("Thriller (album)", "Thriller", [], None, "album"),
        ("Friends (1994-2004)", "Friends", [], 1994, None),
        ("Paris, Texas (1984)", "Paris, Texas", [], 1984, None),  # a comma that is no article
    ],
)
def test_title_parts(title, main, alts, year, kind):
    got = parts(title)
    assert (got["main"], got["alts"], got["year"], got["kind"]) == (main, alts, year, kind)


@pytest.mark.parametrize(
    ("name", "normed", "cored"),
    [
        ("The Dark Knight", "the dark knight", "dark knight"),
        ("Amélie", "amelie", "amelie"),
        ("ＷＡＬＬ·Ｅ", "wall e", "wall e"),  # full-width letters (NFKC) and the interpunct
        ("Tom & Jerry", "tom and jerry", "tom and jerry"),
        ("Ocean's Eleven", "oceans 11", "oceans 11"),  # numerals as digits
        ("Rocky IV", "rocky 4", "rocky 4"),
        ("Malcolm X", "malcolm x", "malcolm x"),
        ("Ke$ha", "kesha", "kesha"),
        ("Mike + The Mechanics", "mike and the mechanics", "mike and the mechanics"),
        ("A-Team", "a team", "a team"),  # no article: not a separate word
        ("Les Misérables", "les miserables", "miserables"),
        ("Léon: The Professional", "leon the professional", "leon the professional"),
        (" Star  Wars:  Episode IV - A New Hope ", "star wars episode 4 a new hope", "star wars episode 4 a new hope"),
        ("Straße", "strasse", "strasse"),
        ("L'Avventura", "lavventura", "lavventura"),
        ("A", "a", "a"),  # an article alone stays
        ("?!...", "", ""),
    ],
)
def test_norm_and_core(name, normed, cored):
    got = pl.select(norm(pl.lit(name)).alias("n")).with_columns(core(pl.col("n"), pl.lit(name)).alias("c")).row(0)
    assert got == (normed, cored)
