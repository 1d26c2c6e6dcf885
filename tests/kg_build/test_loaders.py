from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from kg_build.catalog import LOADERS, CatalogError, load_interactions_csv
from kg_build.catalog.csv import load_csv
from kg_build.catalog.lastfm import load_lastfm
from kg_build.catalog.movielens import load_movielens, load_movielens_1m
from kg_build.schema import INTERACTIONS, ITEMS_CORE, polars_schema


def _rejects(catalog) -> list[tuple[str, int, str]]:
    return [(Path(f).name, line, reason) for f, line, reason in catalog.rejects.select("file", "line", "reason").rows()]


def _core_schema_holds(catalog) -> None:
    assert dict(catalog.items.select(ITEMS_CORE.names).schema) == dict(polars_schema(ITEMS_CORE))
    assert catalog.interactions.schema == polars_schema(INTERACTIONS)
    assert catalog.items["item_id"].is_unique().all()


# -- the real datasets (counts from ../shared/data/SOURCES.md) ---------------------------------
@pytest.mark.shared
def test_movielens_latest_small(shared_data: Path):
    cat = load_movielens(shared_data / "movielens-latest-small")
    assert (cat.items.height, cat.interactions.height, cat.rejects.height) == (9_742, 100_836, 0)
    assert cat.interactions["user_id"].n_unique() == 610
    _core_schema_holds(cat)
    toy = cat.items.row(by_predicate=pl.col("item_id") == "1", named=True)
    assert (toy["title"], toy["year"], toy["imdb_id"], toy["tmdb_id"]) == ("Toy Story", 1995, "tt0114709", 862)
    assert toy["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    quoted = cat.items.row(by_predicate=pl.col("item_id") == "11", named=True)
    assert (quoted["title"], quoted["raw_title"]) == ("American President, The", "American President, The (1995)")
    assert cat.items["imdb_id"].null_count() == 0
    assert cat.interactions["ts"].min().year == 1996


@pytest.mark.shared
def test_movielens_1m_movies_in_latin1(shared_data: Path):
    cat = load_movielens_1m(shared_data / "movielens-1m")
    assert (cat.items.height, cat.rejects.height) == (3_883, 0)
    assert cat.interactions.is_empty()  # ratings.dat is not in ../shared (see its MISSING.txt)
    _core_schema_holds(cat)
    assert cat.items.filter(pl.col("item_id") == "73")["title"].item() == "Misérables, Les"


@pytest.mark.shared
def test_hetrec_lastfm(shared_data: Path):
    cat = load_lastfm(shared_data / "hetrec2011-lastfm-2k")
    assert (cat.items.height, cat.interactions.height, cat.rejects.height) == (17_632, 92_834, 0)
    assert cat.interactions["user_id"].n_unique() == 1_892
    _core_schema_holds(cat)
    assert cat.items.filter(pl.col("item_id") == "1")["title"].item() == "MALICE MIZER"
    assert cat.interactions["weight"].min() >= 1


# -- crafted bad files ------------------------------------------------------------------------------
def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_movielens_quarantines_bad_rows_and_keeps_the_good_ones(tmp_path: Path):
    folder = tmp_path / "ml"
    _write(folder / "movies.csv", (
        b"movieId,title,genres\r\n"
        b"1,Toy Story (1995),Animation|Comedy\r\n"
        b"2,Jumanji (1995)\r\n"                                   # line 3: a field missing
        b"3,Caf\xe9 au Lait (1993),Comedy\r\n"                    # line 4: not UTF-8
        b"4, (1995),Drama\r\n"                                    # line 5: empty title
        b"1,Toy Story again (1995),Comedy\r\n"                    # line 6: duplicate movieId
        b"x7,Heat (1995),Crime\r\n"                               # line 7: id not an integer
        b"8,\"Unclosed, The (1990),Drama\r\n"                     # line 8: broken quoting
        b"\r\n"                                                   # blank lines are skipped
        b"11,\"American President, The (1995)\",Comedy|Drama\r\n"
        b"12,\"Say \"\"Hello\"\" (2001)\",Comedy\r\n"
    ))
    _write(folder / "links.csv", "movieId,imdbId,tmdbId\n1,0114709,862\n11,112346,9087\n99,0000001,\n11,0112346,9087\n")
    _write(folder / "ratings.csv", (
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n"
        "1,2,4.0,964982703\n"        # line 3: movie 2 was quarantined
        "1,11,9,964982703\n"          # line 4: rating out of range
        "1,11,3.5\n"                  # line 5: a field missing
        "2,12,5.0,964982704\n"
    ))
    cat = load_movielens(folder)
    assert sorted(cat.items["item_id"].to_list()) == ["1", "11", "12"]
    assert cat.items.filter(pl.col("item_id") == "12")["title"].item() == 'Say "Hello"'
    assert cat.items.filter(pl.col("item_id") == "11")["imdb_id"].item() == "tt0112346"
    assert cat.interactions.select("user_id", "item_id").rows() == [("1", "1"), ("2", "12")]
    got = _rejects(cat)
    assert ("movies.csv", 3, "expected 3 fields, found 2") in got
    assert ("movies.csv", 4, "bad encoding: not valid utf-8") in got
    assert ("movies.csv", 5, "empty title") in got
    assert ("movies.csv", 6, "duplicate movieId 1 (first on line 2)") in got
    assert ("movies.csv", 7, "movieId is not an integer: x7") in got
    assert ("movies.csv", 8, "malformed quoting: unbalanced double quote") in got
    assert ("links.csv", 4, "movieId 99 is not in movies") in got
    assert ("links.csv", 5, "duplicate movieId 11 (first on line 3)") in got
    assert ("ratings.csv", 3, "movieId 2 is not in the catalog") in got
    assert ("ratings.csv", 4, "rating must be a number in 0.5..5, got 9") in got
    assert ("ratings.csv", 5, "expected 4 fields separated by ',', found 3") in got
    assert len(got) == 11
    assert str(folder / "movies.csv") in cat.rejects["file"].to_list()  # the full path, for the report
    assert cat.rejects.filter(pl.col("line") == 4)["raw"].to_list()[0].startswith("3,Caf")


def test_movielens_1m_flags_bytes_that_are_not_latin1_text(tmp_path: Path):
    folder = tmp_path / "ml-1m"
    _write(folder / "movies.dat", (
        "1::Toy Story (1995)::Animation\n".encode("latin-1")
        + "2::Misérables, Les (1995)::Drama\n".encode("latin-1")
        + "3::Amélie (2001)::Comedy\n".encode()          # line 3: UTF-8 bytes in a Latin-1 file
        + b"7::Nul\x00l (1990)::Drama\n"                          # line 4: a NUL byte
        + b"4::Heat (1995)\n"                                     # line 5: a field missing
        + b"5::::Drama\n"                                         # line 6: empty title
        + b"2::Duplicate (1999)::Drama\n"                         # line 7: duplicate id
    ))
    cat = load_movielens_1m(folder)
    assert cat.items["title"].to_list() == ["Toy Story", "Misérables, Les"]
    assert _rejects(cat) == [
        ("movies.dat", 3, "bad encoding: UTF-8 bytes or control characters, not ISO-8859-1 text"),
        ("movies.dat", 4, "bad encoding: NUL byte"),
        ("movies.dat", 5, "expected 3 fields separated by '::', found 2"),
        ("movies.dat", 6, "empty title"),
        ("movies.dat", 7, "duplicate movieId 2 (first on line 2)"),
    ]


def test_lastfm_quarantines_bad_artists_and_plays(tmp_path: Path):
    folder = tmp_path / "lastfm"
    _write(folder / "artists.dat", (
        "id\tname\turl\tpictureURL\n"
        "1\tMALICE MIZER\thttp://www.last.fm/music/MALICE+MIZER\thttp://x/1.jpg\n"
        "2\tDiary of Dreams\thttp://www.last.fm/music/Diary+of+Dreams\n"    # line 3: a field missing
        "3\t \thttp://www.last.fm/music/x\t\n"                               # line 4: empty name
        "1\tMALICE MIZER\thttp://www.last.fm/music/MALICE+MIZER\t\n"        # line 5: duplicate id
        "4\tBjörk\thttp://www.last.fm/music/Bj%C3%B6rk\t\n"
    ))
    _write(folder / "user_artists.dat", "userID\tartistID\tweight\n2\t1\t13883\n2\t4\t0\n2\t3\t10\n3\t4\t7\n")
    cat = load_lastfm(folder)
    assert cat.items["title"].to_list() == ["MALICE MIZER", "Björk"]
    assert cat.interactions.select("user_id", "item_id", "weight").rows() == [("2", "1", 13883.0), ("3", "4", 7.0)]
    assert _rejects(cat) == [
        ("artists.dat", 3, "expected 4 fields separated by '\\t', found 3"),
        ("artists.dat", 4, "empty title"),
        ("artists.dat", 5, "duplicate artist id 1 (first on line 2)"),
        ("user_artists.dat", 3, "weight must be a positive play count, got 0"),
        ("user_artists.dat", 4, "artistID 3 is not in the catalog"),
    ]


def test_csv_catalog_with_extra_columns_lists_and_interactions(tmp_path: Path):
    items = _write(tmp_path / "items.csv", (
        "item_id,title,year,imdb_id,genres,cast\n"
        "a1,\"Dark Knight, The\",2008,tt0468569,Action|Crime,Christian Bale|Heath Ledger\n"
        "a2,Metropolis,1927,,Science fiction,\n"
        "a3,Broken,19x5,,Drama,\n"               # line 4: bad year
        "a1,Duplicate,2000,,,\n"                  # line 5: duplicate item_id
    ))
    log = _write(tmp_path / "log.csv", "user_id,item_id,weight,ts\nu1,a1,1,2024-01-02T03:04:05Z\nu1,a2,x,\nu2,zz,1,\nu2,a2,2,\n")
    cat = load_csv(items, log)
    assert cat.items.select("item_id", "title", "year", "imdb_id").rows() == [
        ("a1", "Dark Knight, The", 2008, "tt0468569"), ("a2", "Metropolis", 1927, None)]
    assert cat.items["cast"].to_list() == [["Christian Bale", "Heath Ledger"], []]
    assert cat.interactions.select("user_id", "item_id").rows() == [("u1", "a1"), ("u2", "a2")]
    assert cat.interactions["ts"][0].isoformat() == "2024-01-02T03:04:05+00:00"
    assert _rejects(cat) == [
        ("items.csv", 4, "year is not a number: 19x5"),
        ("items.csv", 5, "duplicate item_id a1 (first on line 2)"),
        ("log.csv", 3, "weight is not a number: x"),
        ("log.csv", 4, "item_id zz is not in the catalog"),
    ]
    _core_schema_holds(cat)


@pytest.mark.parametrize(
    ("loader", "files", "message"),
    [
        (load_movielens, {"movies.csv": "id,title,genres\n1,A (1990),Drama\n"},
         r"movies\.csv:1: header is 'id,title,genres', expected 'movieId,title,genres'"),
        (load_movielens, {}, r"movies\.csv: file not found"),
        (load_lastfm, {"artists.dat": ""}, r"artists\.dat: empty file"),
        (lambda folder: load_csv(folder / "items.csv"), {"items.csv": "sku,name\n1,A\n"},
         r"items\.csv:1: header lacks the required column\(s\) item_id, title"),
        (lambda folder: load_csv(folder / "items.csv"), {"items.csv": "item_id,title,raw\n1,A,x\n"},
         r"items\.csv: column name\(s\) raw are reserved"),
    ],
)
def test_whole_file_problems_raise_naming_the_file(tmp_path: Path, loader, files: dict[str, str], message: str):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(CatalogError, match=message):
        loader(tmp_path)


def test_interactions_csv_needs_its_header(tmp_path: Path):
    path = _write(tmp_path / "log.csv", "user,item\n1,2\n")
    with pytest.raises(CatalogError, match=r"log\.csv:1: header is 'user,item'"):
        load_interactions_csv(path, pl.DataFrame({"item_id": ["2"]}))


def test_registry_names_every_format():
    assert set(LOADERS) == {"csv", "movielens", "movielens-1m", "lastfm"}
