"""A KGAT ``Data/<dataset>/`` folder (plain or ``.gz`` files) read back into a KG: :func:`read_kgat`.

A missing file, or a ``MISSING.txt`` note, raises :class:`~kg_build.export.files.BenchmarkIncomplete`; a
bad line raises :class:`~kg_build.export.files.FileFormatError` naming the file and the line.
:func:`with_split` recomputes a KG's splits. The file formats and KGAT's conventions are in
:mod:`kg_build.export.kgat`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from kg_build.export.files import MISSING_NOTE, BenchmarkIncomplete, fail_at_line, read_int_lines, read_lines
from kg_build.export.kgat import KGAT_SPLIT_FILES
from kg_build.splits import SplitConfig, split
from kg_build.tables import KG, SCHEMAS

KGAT_REQUIRED = ("train.txt", "test.txt", "kg_final.txt", "item_list.txt", "entity_list.txt", "user_list.txt",
                 "relation_list.txt")
# An absolute IRI (scheme ":" rest, no spaces or characters IRIs forbid) and a plain token (a Freebase id).
IRI = r'^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>"{}|\\^`]+$'
TOKEN = r'^[^\s<>"{}|\\^`]+$'


def read_kgat(folder: Path, split: SplitConfig | None = None) -> KG:
    """Read a KGAT-format folder into a KG; ``split`` None keeps the files' split, else re-splits.

    - Entities keep their remap ids as ``entity_id``; ``iri`` is the ``org_id`` when it is an absolute
      IRI, ``urn:kgat:entity:<org_id>`` when it is a plain token (Freebase ``m.0f7jpbw``), and
      ``urn:kgat:entity-remap:<remap_id>`` for anything else (the literals with spaces, and the empty
      id, in amazon-book's list); ``label`` is the ``org_id`` as given (null for IRIs and empty ids).
      Entities named in ``item_list`` are of kind ``item``; the list's ``freebase_id`` must be the
      entity ``org_id`` at the same remap id.
    - Relations: ``relation_list`` with its remap ids, ``inverse_of`` null (KGAT adds inverses at
      training time); ``iri`` as for entities (``urn:kgat:relation:``), ``label`` the IRI's local name.
    - Triples: ``kg_final`` deduplicated (KGAT's loader does ``np.unique`` too).
    - Items: ``item_index`` = remap id, ``item_id`` = ``org_id``; users likewise; both dense.
    - Interactions: the distinct (user, item) pairs of train, valid, test and cold_test (the last two
      when present), weight 1.0, no timestamp. A pair listed twice (KGAT's last-fm test.txt repeats
      items) counts once, in the first split of train, valid, test, cold_test.
    """
    files = _kgat_files(folder)
    entities = read_entity_list(files["entity_list.txt"])
    item_entity = read_item_list(files["item_list.txt"], entities, files["entity_list.txt"])
    relations = _read_relation_list(files["relation_list.txt"])
    users = read_users(files["user_list.txt"])
    triples = _read_kg_final(files["kg_final.txt"], entities, relations)
    pairs = pl.concat([
        read_user_items(files[file], users, item_entity).with_columns(pl.lit(order).alias("_order"),
                                                                      pl.lit(name).alias("split"))
        for order, (name, file) in enumerate(KGAT_SPLIT_FILES.items()) if file in files
    ])
    pairs = pairs.sort("user_index", "item_index", "_order").unique(
        ["user_index", "item_index"], keep="first", maintain_order=True
    )
    kg = KG(
        entities=entities.with_columns(
            pl.when(pl.col("entity_id").is_in(item_entity["entity_id"].implode()))
            .then(pl.lit("item")).otherwise(pl.lit("attribute")).alias("kind"),
            pl.lit(False).alias("retired"),
        ),
        relations=relations,
        triples=triples,
        item_entity=item_entity,
        users=users,
        interactions=pairs.select("user_index", "item_index", pl.lit(1.0).alias("weight"),
                                  pl.lit(None, pl.Datetime("us", "UTC")).alias("ts")),
        splits=pairs.select("user_index", "item_index", "split"),
    )
    return kg if split is None else with_split(kg, split)


def with_split(kg: KG, config: SplitConfig) -> KG:
    """``kg`` with its ``splits`` recomputed by :func:`kg_build.splits.split` over its interactions."""
    rows = (
        kg.interactions.join(kg.users, on="user_index")
        .join(kg.item_entity.select("item_index", "item_id"), on="item_index")
        .select("user_id", "item_id", "weight", "ts")
    )
    splits = (
        split(rows, config)
        .join(kg.users, on="user_id")
        .join(kg.item_entity.select("item_index", "item_id"), on="item_id")
        .select("user_index", "item_index", "split")
        .sort("user_index", "item_index")
    )
    return dataclasses.replace(kg, splits=splits)


def _kgat_files(folder: Path) -> dict[str, Path]:
    """``{file name: path}`` of the plain or ``.gz`` files present; raises when the folder is incomplete."""
    found = {}
    for name in (*KGAT_REQUIRED, KGAT_SPLIT_FILES["valid"], KGAT_SPLIT_FILES["cold_test"]):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    missing = [name for name in KGAT_REQUIRED if name not in found]
    if missing or (folder / MISSING_NOTE).is_file():
        raise BenchmarkIncomplete.for_folder(folder, missing)
    return found


def read_entity_list(path: Path) -> pl.DataFrame:
    """``entity_id, iri, label, org_id`` from ``org_id remap_id`` lines (the org_id may hold spaces)."""
    rows = _read_list(path, "org_id remap_id")
    fail_at_line(rows, path, pl.col("remap").is_duplicated(), "remap id repeated")
    org = pl.col("org_id")
    rows = rows.with_columns(
        pl.col("remap").cast(pl.Int32).alias("entity_id"),
        _kgat_iri(org, pl.col("remap"), "entity"),
        pl.when(org.str.contains(IRI) | (org == "")).then(None).otherwise(org).alias("label"),
    )
    fail_at_line(rows, path, pl.col("iri").is_duplicated(), "entity org_id repeated")
    return rows.select("entity_id", "iri", "label", "org_id", "line").sort("entity_id")


def read_item_list(path: Path, entities: pl.DataFrame, entity_path: Path) -> pl.DataFrame:
    """``item_index, item_id, entity_id``; an item's remap id must be its entity's remap id."""
    rows = _read_list(path, "org_id remap_id freebase_id")
    _check_dense(rows, path)
    fail_at_line(rows, path, pl.col("org_id").is_duplicated(), "item org_id repeated")
    rows = rows.join(entities.select(pl.col("entity_id").cast(pl.Int64).alias("remap"), pl.col("org_id")
                                     .alias("entity_org")), on="remap", how="left")
    fail_at_line(rows, path, pl.col("entity_org").is_null() | (pl.col("entity_org") != pl.col("freebase_id")),
                f"the item's freebase_id is not the org_id of the entity with its remap id in {entity_path.name} "
                "(KGAT needs an item's remap id to be its entity's)")
    return rows.select(pl.col("remap").alias("item_index"), pl.col("org_id").alias("item_id"),
                       pl.col("remap").alias("entity_id")).cast(SCHEMAS["item_entity"]).sort("item_index")


def read_users(path: Path) -> pl.DataFrame:
    rows = _read_list(path, "org_id remap_id")
    _check_dense(rows, path)
    fail_at_line(rows, path, pl.col("org_id").is_duplicated(), "user org_id repeated")
    return rows.select(pl.col("remap").alias("user_index"), pl.col("org_id").alias("user_id")).cast(
        SCHEMAS["users"]).sort("user_index")


def _read_relation_list(path: Path) -> pl.DataFrame:
    rows = _read_list(path, "org_id remap_id")
    fail_at_line(rows, path, pl.col("remap").is_duplicated(), "remap id repeated")
    org = pl.col("org_id")
    local = org.str.extract(r"([^/#]+)$", 1)
    rows = rows.with_columns(_kgat_iri(org, pl.col("remap"), "relation"))
    fail_at_line(rows, path, pl.col("iri").is_duplicated(), "relation org_id repeated")
    return rows.select(
        pl.col("remap").cast(pl.Int32).alias("relation_id"),
        "iri",
        pl.coalesce(local, pl.col("remap").cast(pl.String)).alias("label"),
        pl.lit(None, pl.Int32).alias("inverse_of"),
        pl.lit(False).alias("retired"),
    ).sort("relation_id")


def _kgat_iri(org: pl.Expr, remap: pl.Expr, what: str) -> pl.Expr:
    return (
        pl.when(org.str.contains(IRI)).then(org)
        .when(org.str.contains(TOKEN)).then(pl.concat_str(pl.lit(f"urn:kgat:{what}:"), org))
        .otherwise(pl.format(f"urn:kgat:{what}-remap:{{}}", remap))
        .alias("iri")
    )


def _read_list(path: Path, header: str) -> pl.DataFrame:
    """``line, org_id, remap`` (+ ``freebase_id`` for item lists); the header line is optional."""
    lines = read_lines(path)
    if lines.height and lines["raw"][0].split() == header.split():
        lines = lines.slice(1)
    if header.count(" ") == 2:
        pattern, names = r"^\s*(\S+)\s+(\S+)\s+(\S+)\s*$", ["org_id", "remap", "freebase_id"]
    else:
        pattern, names = r"^(.*?)[ \t]+(\S+)[ \t]*$", ["org_id", "remap"]
    rows = lines.with_columns(pl.col("raw").str.extract_groups(pattern).struct.rename_fields(names).alias("f"))
    rows = rows.unnest("f").with_columns(pl.col("remap").cast(pl.Int64, strict=False))
    fail_at_line(rows, path, pl.col("remap").is_null() | (pl.col("remap") < 0),
                f"expected `{header}` with a non-negative integer remap_id")
    return rows.with_columns(pl.col("org_id").str.strip_chars())


def _check_dense(rows: pl.DataFrame, path: Path) -> None:
    n = rows.height
    fail_at_line(rows, path, (pl.col("remap") >= n) | pl.col("remap").is_duplicated(),
                f"remap ids must be 0..{n - 1}, each once")


def _read_kg_final(path: Path, entities: pl.DataFrame, relations: pl.DataFrame) -> pl.DataFrame:
    rows = read_int_lines(path, "h r t")
    fail_at_line(rows, path, pl.col("ids").list.len() != 3, "expected `h r t`")
    rows = rows.with_columns(
        pl.col("ids").list.get(0).alias("head_id"),
        pl.col("ids").list.get(1).alias("relation_id"),
        pl.col("ids").list.get(2).alias("tail_id"),
    )
    known_e, known_r = entities["entity_id"].cast(pl.Int64).implode(), relations["relation_id"].cast(pl.Int64).implode()
    fail_at_line(rows, path, ~pl.col("head_id").is_in(known_e) | ~pl.col("tail_id").is_in(known_e),
                "entity id not in entity_list")
    fail_at_line(rows, path, ~pl.col("relation_id").is_in(known_r), "relation id not in relation_list")
    return (
        rows.select("head_id", "relation_id", "tail_id").cast(SCHEMAS["triples"])
        .unique().sort("head_id", "relation_id", "tail_id")
    )


def read_user_items(path: Path, users: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """``user_index, item_index`` from ragged ``user item item ...`` lines (split and exploded)."""
    rows = read_int_lines(path, "user item item ...")
    rows = rows.select(
        "line", "raw",
        pl.col("ids").list.first().alias("user_index"),
        pl.col("ids").list.slice(1).alias("item_index"),
    )
    fail_at_line(rows, path, ~pl.col("user_index").is_in(users["user_index"].cast(pl.Int64).implode()),
                "user id not in user_list")
    pairs = rows.explode("item_index").drop_nulls("item_index")
    fail_at_line(pairs, path, ~pl.col("item_index").is_in(items["item_index"].cast(pl.Int64).implode()),
                "item id not in item_list")
    return pairs.select("user_index", "item_index").cast(pl.Int32)
