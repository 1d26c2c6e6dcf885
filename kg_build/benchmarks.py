"""Loaders of the published benchmark sets in ``../shared/data`` into the :class:`~kg_build.tables.KG` tables.

- :func:`load_kgcn_music` reads ``kgcn-music/`` (KGCN, hwwang55/KGCN ``data/music``):
  ``item_index2entity_id.txt`` (``artistID<TAB>entity_id``), ``kg.txt``
  (``head<TAB>relation_name<TAB>tail``, Microsoft Satori relations) and HetRec 2011's
  ``user_artists.dat`` (``userID<TAB>artistID<TAB>weight`` with a header).
- :func:`load_kgat` reads a KGAT ``Data/<dataset>/`` folder with :func:`kg_build.export.read_kgat`.
  Both shared copies (``kgat-last-fm``: no ``train.txt``; ``kgat-amazon-book``: no ``kg_final.txt``)
  are incomplete, so on them it raises :class:`BenchmarkIncomplete` quoting their ``MISSING.txt``.
- :data:`BENCHMARKS`: name -> loader taking ``(folder, split)``.

A missing file raises :class:`BenchmarkIncomplete` (naming the folder and the files); a bad line
raises :class:`FileFormatError` (``file:line: what is wrong``): a published benchmark either loads
whole, with its published counts, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from kg_build.catalog.lines import CatalogError, Parsed, read_delimited
from kg_build.export import BenchmarkIncomplete, FileFormatError, fail_at_line, read_kgat, with_split
from kg_build.splits import SplitConfig, implicit
from kg_build.tables import KG, SCHEMAS

__all__ = ["BENCHMARKS", "BenchmarkIncomplete", "FileFormatError", "load_kgat", "load_kgcn_music"]

KGCN_ITEMS, KGCN_KG, KGCN_PLAYS = "item_index2entity_id.txt", "kg.txt", "user_artists.dat"
KGCN_ENTITY = "urn:kgcn:entity:"
KGCN_RELATION = "urn:kgcn:relation:"
PLAY_HEADER = ["userID", "artistID", "weight"]


def load_kgcn_music(folder: Path, split: SplitConfig) -> KG:
    """KGCN's Last.FM music set: 3,846 items, 9,366 entities, 60 relations, 15,518 triples (Table 1).

    - Items: the ``item_index2entity_id.txt`` rows in file order (KGCN's own item order), so
      ``item_index`` = KGCN's item index; ``item_id`` is the HetRec ``artistID``.
    - Entities keep the dataset's integer ids as ``entity_id`` (``urn:kgcn:entity:<id>``, no label);
      kind ``item`` for the mapped items. Relations get ids 0..59 in sorted name order
      (``urn:kgcn:relation:<name>``, label = name, no inverses).
    - Interactions: every ``user_artists.dat`` row whose artist is a mapped item, weight = play count,
      implicit with no threshold (:func:`kg_build.splits.implicit`); ``user_index`` is dense over those
      users in ``userID`` order; then :func:`kg_build.splits.split` with ``split``.

    Against the paper's 1,872 users and 42,346 interactions: KGCN's ``src/preprocess.py`` (music:
    threshold 0) keeps the same rows as positives, 21,173 (user, artist) pairs from 1,872 users, and
    writes one sampled unlistened item per positive as a negative (``np.random.seed(555)``), so its
    42,346 = 2 x 21,173. We keep the 21,173 positives and 1,872 users and sample no negatives
    (evaluation samples its own). With ``SplitConfig()``: 16,400 train, 1,300 valid, 3,473 test.
    """
    paths = _require(folder, [KGCN_ITEMS, KGCN_KG, KGCN_PLAYS])
    items = _kgcn_items(paths[KGCN_ITEMS])
    facts = _kgcn_facts(paths[KGCN_KG])
    relations = (
        facts.select(pl.col("relation").unique().sort().alias("label"))
        .with_row_index("relation_id")
        .select(
            "relation_id",
            pl.concat_str(pl.lit(KGCN_RELATION), "label").alias("iri"),
            "label",
            pl.lit(None, pl.Int32).alias("inverse_of"),
            pl.lit(False).alias("retired"),
        )
    )
    triples = facts.join(relations.select("relation_id", pl.col("label").alias("relation")), on="relation").select(
        "head_id", "relation_id", "tail_id"
    )
    ids = pl.concat([items["entity_id"], triples["head_id"], triples["tail_id"]]).unique().sort()
    entities = pl.DataFrame({"entity_id": ids}).select(
        "entity_id",
        pl.format(f"{KGCN_ENTITY}{{}}", "entity_id").alias("iri"),
        pl.lit(None, pl.String).alias("label"),
        pl.when(pl.col("entity_id").is_in(items["entity_id"].implode()))
        .then(pl.lit("item")).otherwise(pl.lit("attribute")).alias("kind"),
        pl.lit(False).alias("retired"),
    )
    plays = implicit(_kgcn_plays(paths[KGCN_PLAYS], items), threshold=None)
    users = (
        plays.select(pl.col("user_id").unique())
        .sort(pl.col("user_id").cast(pl.Int64))
        .with_row_index("user_index")
        .select("user_index", "user_id")
    )
    interactions = plays.join(users, on="user_id").join(items, on="item_id").select(
        "user_index", "item_index", "weight", "ts"
    ).sort("user_index", "item_index")
    kg = KG(
        entities=entities,
        relations=relations,
        triples=triples.sort("head_id", "relation_id", "tail_id"),
        item_entity=items,
        users=users,
        interactions=interactions,
        splits=pl.DataFrame(schema=SCHEMAS["splits"]),
    )
    return with_split(kg, split)


def load_kgat(folder: Path, split: SplitConfig | None = None) -> KG:
    """A KGAT benchmark folder (plain or ``.gz``); ``split`` None keeps the published train/test split."""
    return read_kgat(folder, split)


# name -> loader(folder, split). For the KGAT sets a SplitConfig re-splits their interactions; call
# load_kgat(folder) (split None) for the published train/test split.
BENCHMARKS: dict[str, Callable[[Path, SplitConfig], KG]] = {
    "kgcn-music": load_kgcn_music,
    "kgat-last-fm": load_kgat,
    "kgat-amazon-book": load_kgat,
}


def _require(folder: Path, names: list[str]) -> dict[str, Path]:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise BenchmarkIncomplete.for_folder(folder, missing)
    return {name: folder / name for name in names}


def _kgcn_items(path: Path) -> pl.DataFrame:
    """``item_index, item_id, entity_id`` in file order."""
    rows = _strict(path, ["artistID", "entity_id"])
    rows = _ints(rows, path, ["artistID", "entity_id"])
    fail_at_line(rows, path, pl.col("artistID").is_duplicated(), "artistID repeated")
    fail_at_line(rows, path, pl.col("entity_id").is_duplicated(), "entity_id repeated")
    return rows.with_row_index("item_index").select(
        "item_index", pl.col("artistID").cast(pl.String).alias("item_id"), "entity_id"
    ).cast(SCHEMAS["item_entity"])


def _kgcn_facts(path: Path) -> pl.DataFrame:
    """``head_id, relation, tail_id``; a repeated triple is an error (the published count has none)."""
    rows = _ints(_strict(path, ["head_id", "relation", "tail_id"]), path, ["head_id", "tail_id"])
    rows = rows.with_columns(pl.col("relation").str.strip_chars())
    fail_at_line(rows, path, pl.col("relation") == "", "empty relation name")
    fail_at_line(rows, path, pl.struct("head_id", "relation", "tail_id").is_duplicated(), "repeated triple")
    return rows.select(pl.col("head_id").cast(pl.Int32), "relation", pl.col("tail_id").cast(pl.Int32))


def _kgcn_plays(path: Path, items: pl.DataFrame) -> pl.DataFrame:
    """``user_id, item_id, weight, ts`` for the plays of mapped artists."""
    rows = _ints(_strict(path, PLAY_HEADER, header=PLAY_HEADER), path, PLAY_HEADER)
    fail_at_line(rows, path, pl.col("weight") <= 0, "weight must be a positive play count")
    return rows.select(
        pl.col("userID").cast(pl.String).alias("user_id"),
        pl.col("artistID").cast(pl.String).alias("item_id"),
        pl.col("weight").cast(pl.Float32),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("ts"),
    ).filter(pl.col("item_id").is_in(items["item_id"].implode()))


def _strict(path: Path, columns: list[str], *, header: list[str] | None = None) -> pl.DataFrame:
    """The rows of a tab-separated file; the first bad line (field count, encoding) is an error."""
    try:
        parsed: Parsed = read_delimited(path, columns, sep="\t", header=header)
    except CatalogError as exc:
        raise FileFormatError(str(exc)) from None
    if parsed.rejects.height:
        first = parsed.rejects.sort("line").row(0, named=True)
        more = f" ({parsed.rejects.height - 1:,} more bad lines)" if parsed.rejects.height > 1 else ""
        raise FileFormatError(f"{path}:{first['line']}: {first['reason']}: {first['raw'][:200]!r}{more}")
    return parsed.rows


def _ints(rows: pl.DataFrame, path: Path, columns: list[str]) -> pl.DataFrame:
    """``columns`` cast to Int64; a field that is not a non-negative integer is an error."""
    for column in columns:
        value = pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)
        fail_at_line(rows, path, value.is_null() | (value < 0), f"{column} is not a non-negative integer")
        rows = rows.with_columns(value.alias(column))
    return rows

