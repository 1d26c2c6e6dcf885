"""HetRec 2011 Last.FM loader: artists.dat (the catalog) and user_artists.dat (play counts)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kg_build.catalog.base import Catalog, finish_interactions, finish_items, no_interactions
from kg_build.catalog.lines import int_id, read_delimited, reject_if, reject_non_int

ARTIST_COLUMNS = ["id", "name", "url", "pictureURL"]
PLAY_COLUMNS = ["userID", "artistID", "weight"]


def load_lastfm(folder: Path, *, items_file: str = "artists.dat", interactions: bool = True) -> Catalog:
    """Artists become items (no year, no IMDb id; ``url`` kept); play counts become ``weight``."""
    artists_path, plays_path = folder / items_file, folder / "user_artists.dat"
    parsed = read_delimited(artists_path, ARTIST_COLUMNS, sep="\t", header=ARTIST_COLUMNS)
    rows, bad_ids = reject_non_int(parsed.rows, artists_path, "id")
    rows = rows.with_columns(
        int_id("id").alias("item_id"),
        pl.col("name").str.strip_chars().alias("title"),
        pl.lit(None, pl.Int16).alias("year"),
        pl.lit(None, pl.String).alias("imdb_id"),
    ).select("line", "raw", "item_id", "title", "year", "imdb_id", "url")
    items, checks = finish_items(rows, artists_path, "artist id")
    if not interactions:
        return Catalog(folder.name, items, no_interactions(), pl.concat([parsed.rejects, bad_ids, *checks]),
                       [artists_path])

    plays = read_delimited(plays_path, PLAY_COLUMNS, sep="\t", header=PLAY_COLUMNS)
    rows, bad_user = reject_non_int(plays.rows, plays_path, "userID")
    rows, bad_artist = reject_non_int(rows, plays_path, "artistID")
    count = pl.col("weight").str.strip_chars().cast(pl.Int64, strict=False)
    rows, bad_weight = reject_if(
        rows, plays_path, count.is_null() | (count <= 0),
        pl.format("weight must be a positive play count, got {}", pl.col("weight")),
    )
    rows = rows.with_columns(
        int_id("userID").alias("user_id"),
        int_id("artistID").alias("item_id"),
        count.cast(pl.Float32).alias("weight"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("ts"),
    )
    interactions, unknown = finish_interactions(rows, plays_path, items, "artistID")
    rejects = [parsed.rejects, bad_ids, *checks, plays.rejects, bad_user, bad_artist, bad_weight, unknown]
    return Catalog(folder.name, items, interactions, pl.concat(rejects), [artists_path, plays_path])
