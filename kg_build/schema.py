"""Arrow schemas of the data contracts (DESIGN.md §4). Steps cast to these before writing."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

# items: the catalog's own id, title and year, external ids; loaders may add extra attribute
# columns after these (MovieLens genres, Last.FM urls, the sample's directors and cast).
ITEMS_CORE = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("year", pa.int16()),
        pa.field("imdb_id", pa.string()),
    ]
)

INTERACTIONS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("weight", pa.float32(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
    ]
)

# One RDF statement as an endpoint returned it, with where and when it was fetched.
RAW_TRIPLES = pa.schema(
    [
        pa.field("subject", pa.string(), nullable=False),
        pa.field("predicate", pa.string(), nullable=False),
        pa.field("object", pa.string(), nullable=False),
        pa.field("object_kind", pa.string(), nullable=False),  # "iri" | "literal"
        pa.field("lang", pa.string()),
        pa.field("datatype", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("query_hash", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

# Rows a loader could not use, with the file and line they came from.
REJECTS = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)

# In a catalog CSV, these columns hold "|"-separated lists ("Crime|Drama").
LIST_COLUMNS = ("genres", "directors", "cast", "tags")


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The polars schema of an Arrow contract schema."""
    return pl.from_arrow(schema.empty_table()).schema


def empty(schema: pa.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(schema))
