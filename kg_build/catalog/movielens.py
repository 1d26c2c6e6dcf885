"""MovieLens loaders: ml-latest-small (CSV, UTF-8, CRLF) and MovieLens-1M (``::``, ISO-8859-1).

Titles keep the catalog's own spelling ("Dark Knight, The"); the trailing "(2008)" becomes
``year`` and the untouched string stays in ``raw_title``. Normalising titles is alignment's job.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from kg_build.catalog.base import Catalog, finish_interactions, finish_items, no_interactions
from kg_build.catalog.lines import int_id, read_delimited, reject_duplicates, reject_if, reject_non_int

log = logging.getLogger(__name__)

# "Title (1995)", also "Title (2007-)" and "Title (2007-2013)" for series.
_TITLE_YEAR = r"^(.*?)\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$"


def load_movielens(folder: Path, *, items_file: str = "movies.csv", interactions: bool = True) -> Catalog:
    """ml-latest-small style: movies.csv, links.csv (IMDb ids), ratings.csv (unless ``interactions=False``)."""
    movies_path, links_path, ratings_path = folder / items_file, folder / "links.csv", folder / "ratings.csv"
    parsed = read_delimited(
        movies_path, ["movieId", "title", "genres"], sep=",", header=["movieId", "title", "genres"], quoted=True
    )
    rows, bad_ids = reject_non_int(parsed.rows, movies_path, "movieId")
    items, checks = finish_items(_movie_columns(rows), movies_path, "movieId")
    rejects = [parsed.rejects, bad_ids, *checks]
    inputs = [movies_path]

    if links_path.is_file():
        links, link_rejects = _links(links_path, items)
        items = items.drop("imdb_id").join(links, on="item_id", how="left", maintain_order="left")
        items = items.select("item_id", "title", "year", "imdb_id", pl.exclude("item_id", "title", "year", "imdb_id"))
        rejects += link_rejects
        inputs.append(links_path)
    else:
        log.warning("%s not found: items have no IMDb ids", links_path)

    interaction_log = no_interactions()
    if interactions and ratings_path.is_file():
        interaction_log, rating_rejects = _ratings(
            ratings_path, items, ["userId", "movieId", "rating", "timestamp"], sep=",", encoding="utf-8"
        )
        rejects += rating_rejects
        inputs.append(ratings_path)
    return Catalog(folder.name, items, interaction_log, pl.concat(rejects), inputs)


def load_movielens_1m(folder: Path, *, items_file: str = "movies.dat", interactions: bool = True) -> Catalog:
    """MovieLens-1M: movies.dat (``MovieID::Title::Genres``, ISO-8859-1) and ratings.dat when present."""
    movies_path, ratings_path = folder / items_file, folder / "ratings.dat"
    parsed = read_delimited(movies_path, ["movieId", "title", "genres"], sep="::", encoding="iso-8859-1")
    rows, bad_ids = reject_non_int(parsed.rows, movies_path, "movieId")
    items, checks = finish_items(_movie_columns(rows), movies_path, "movieId")
    rejects = [parsed.rejects, bad_ids, *checks]
    inputs = [movies_path]
    interaction_log = no_interactions()
    if interactions and ratings_path.is_file():
        interaction_log, rating_rejects = _ratings(
            ratings_path, items, ["userId", "movieId", "rating", "timestamp"], sep="::",
            encoding="iso-8859-1", header=False,
        )
        rejects += rating_rejects
        inputs.append(ratings_path)
    elif interactions:
        log.warning("%s not found: MovieLens-1M loads without interactions", ratings_path)
    return Catalog(folder.name, items, interaction_log, pl.concat(rejects), inputs)


def _movie_columns(rows: pl.DataFrame) -> pl.DataFrame:
    title = pl.col("raw_title").str.strip_chars()
    return rows.rename({"title": "raw_title"}).with_columns(
        int_id("movieId").alias("item_id"),
        pl.coalesce(title.str.extract(_TITLE_YEAR, 1), title).alias("title"),
        title.str.extract(_TITLE_YEAR, 2).cast(pl.Int16, strict=False).alias("year"),
        pl.lit(None, pl.String).alias("imdb_id"),
        pl.when(pl.col("genres").is_in(["(no genres listed)", ""]))
        .then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col("genres").str.split("|"))
        .alias("genres"),
    ).select("line", "raw", "item_id", "title", "year", "imdb_id", "raw_title", "genres")


def _links(path: Path, items: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    parsed = read_delimited(path, ["movieId", "imdbId", "tmdbId"], sep=",", header=["movieId", "imdbId", "tmdbId"])
    rows, bad_ids = reject_non_int(parsed.rows, path, "movieId")
    rows, bad_imdb = reject_if(
        rows, path,
        (pl.col("imdbId") != "") & pl.col("imdbId").str.strip_chars().cast(pl.Int64, strict=False).is_null(),
        pl.format("imdbId is not a number: {}", pl.col("imdbId")),
    )
    rows = rows.with_columns(int_id("movieId").alias("item_id"))
    rows, duplicates = reject_duplicates(rows, path, "item_id", "movieId")
    known = items.select("item_id", pl.lit(True).alias("_known"))
    rows = rows.join(known, on="item_id", how="left", maintain_order="left")
    rows, unknown = reject_if(
        rows, path, pl.col("_known").is_null(), pl.format("movieId {} is not in movies", pl.col("item_id"))
    )
    imdb = pl.col("imdbId").str.strip_chars().cast(pl.Int64, strict=False)
    links = rows.select(
        "item_id",
        pl.when(imdb.is_not_null()).then(pl.lit("tt") + imdb.cast(pl.String).str.zfill(7)).alias("imdb_id"),
        pl.col("tmdbId").str.strip_chars().cast(pl.Int64, strict=False).alias("tmdb_id"),
    )
    return links, [parsed.rejects, bad_ids, bad_imdb, duplicates, unknown]


def _ratings(
    path: Path, items: pl.DataFrame, columns: list[str], *, sep: str, encoding: str, header: bool = True
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    parsed = read_delimited(path, columns, sep=sep, encoding=encoding, header=columns if header else None)
    rows = parsed.rows
    rows, bad_user = reject_non_int(rows, path, "userId")
    rows, bad_movie = reject_non_int(rows, path, "movieId")
    rating = pl.col("rating").str.strip_chars().cast(pl.Float32, strict=False)
    rows, bad_rating = reject_if(
        rows, path, rating.is_null() | (rating < 0.5) | (rating > 5.0),
        pl.format("rating must be a number in 0.5..5, got {}", pl.col("rating")),
    )
    rows, bad_ts = reject_non_int(rows, path, "timestamp")
    rows = rows.with_columns(
        int_id("userId").alias("user_id"),
        int_id("movieId").alias("item_id"),
        rating.alias("weight"),
        pl.from_epoch(pl.col("timestamp").str.strip_chars().cast(pl.Int64), time_unit="s")
        .dt.replace_time_zone("UTC")
        .alias("ts"),
    )
    interactions, unknown = finish_interactions(rows, path, items, "movieId")
    return interactions, [parsed.rejects, bad_user, bad_movie, bad_rating, bad_ts, unknown]
