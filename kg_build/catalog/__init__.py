"""Catalog loaders: each reads one dataset format into the items / interactions contracts.

Bad rows are quarantined (``Catalog.rejects``: file, line, reason, raw) and the good rows load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kg_build.catalog.base import Catalog
from kg_build.catalog.csv import load_csv, load_interactions_csv
from kg_build.catalog.lastfm import load_lastfm
from kg_build.catalog.lines import CatalogError
from kg_build.catalog.movielens import load_movielens, load_movielens_1m

# format name (as in the profile's catalog.format) -> loader of the dataset at a path
LOADERS: dict[str, Callable[[Path], Catalog]] = {
    "csv": load_csv,
    "movielens": load_movielens,
    "movielens-1m": load_movielens_1m,
    "lastfm": load_lastfm,
}

__all__ = ["LOADERS", "Catalog", "CatalogError", "load_interactions_csv"]
