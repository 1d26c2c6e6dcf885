"""The "amazon-book-scale" benchmark set: KGAT's real amazon-book interactions on a SYNTHETIC KG of the paper's size.

``../shared/data/kgat-amazon-book`` lacks ``kg_final.txt`` (see its ``MISSING.txt``), so this set is **not** KGAT's
amazon-book: only the interactions are real. What it holds:

- Real (KGAT ``Data/amazon-book``): the 70,679 users (``user_index`` = KGAT remap id, ``user_id`` = its org_id),
  the 24,915 items (``item_index`` = remap id, ``item_id`` = the ASIN org_id), the 652,514 train and 193,920 test
  pairs. ``valid`` is a seeded share of all train pairs (not per user), each user keeping at least one train pair:
  with ``valid_share=0.05``, 32,625 valid and 619,889 train.
- SYNTHETIC, seeded: the KG (:func:`synthetic_kg`: 88,572 entities, 39 relations, 2,557,746 triples, as in the
  KGAT paper, every IRI under ``urn:kgrec:synthetic:``), the items' entity ids, and with ``users`` above the
  real count, extra users ``synthetic-user-N`` (:func:`load_amazon`).

Nothing in this KG's structure carries information about the books: a model's accuracy on it says nothing about
KGAT's amazon-book results. It measures speed and memory at that scale. :func:`publish` writes it into a lake as
the published KG version, so the ``train`` and ``score`` steps read it.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from kg_build.export import BenchmarkIncomplete
from kg_build.export.kgat_read import read_entity_list, read_item_list, read_user_items, read_users
from kg_build.tables import KG, SCHEMAS

ENTITY_IRI = "urn:kgrec:synthetic:entity:"
RELATION_IRI = "urn:kgrec:synthetic:relation:"
SYNTHETIC_USER = "synthetic-user-"
# The KGAT paper's amazon-book KG (Table 1).
NUM_ENTITIES, NUM_RELATIONS, NUM_TRIPLES = 88_572, 39, 2_557_746
FILES = ("train.txt", "test.txt", "user_list.txt", "item_list.txt", "entity_list.txt")
PAIR = ["user_index", "item_index"]


def load_amazon(
    folder: Path,
    *,
    seed: int = 2026,
    users: int | None = None,
    valid_share: float = 0.05,
    zipf: float = 1.0,
    num_entities: int = NUM_ENTITIES,
    num_relations: int = NUM_RELATIONS,
    num_triples: int = NUM_TRIPLES,
) -> KG:
    """KGAT amazon-book's real users, items and train/test pairs on a seeded synthetic KG (:func:`synthetic_kg`).

    - ``valid``: ``floor(valid_share x train pairs)`` pairs of the file's train pairs, drawn at random over all of
      them (not per user), except that each user's one pair of smallest random key stays in train. Splits
      train / valid / test (no cold_test); interactions are the same pairs, weight 1.0, no timestamp.
    - ``users`` None: the 70,679 real users. Fewer: the first ``users`` real users (by ``user_index``) and their
      pairs, split as in the whole set (a down-scaled copy; every item stays). More: the real users plus
      SYNTHETIC users ``synthetic-user-0, 1, ...`` (``user_index`` from 70,679 on), each a copy of the train
      pairs (after the valid draw) of a seeded random real user, in split train only.
    - Seeded: the same arguments give identical tables. The KG, the valid draw and the synthetic users use three
      independent streams of ``seed``, so ``users`` changes neither the KG nor the real users' splits.
    """
    if not 0 <= valid_share < 1:
        raise ValueError(f"valid_share must be in [0, 1), got {valid_share}")
    if users is not None and users < 1:
        raise ValueError(f"users must be positive, got {users}")
    kg_rng, valid_rng, user_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    paths = _files(folder)
    real_users = read_users(paths["user_list.txt"])
    items = read_item_list(paths["item_list.txt"], read_entity_list(paths["entity_list.txt"]),
                            paths["entity_list.txt"]).select("item_index", "item_id")
    train = read_user_items(paths["train.txt"], real_users, items).unique(PAIR).sort(PAIR)
    test = read_user_items(paths["test.txt"], real_users, items).unique(PAIR).sort(PAIR)
    splits = pl.concat([
        _hold_out_valid(train, valid_share, valid_rng),
        test.with_columns(pl.lit("test").alias("split")),
    ])
    user_table = real_users
    if users is not None and users <= real_users.height:
        user_table = real_users.head(users)
        splits = splits.filter(pl.col("user_index") < users)
    elif users is not None:
        extra = _synthetic_users(splits.filter(pl.col("split") == "train"), real_users.height,
                                 users - real_users.height, user_rng)
        user_table = pl.concat([real_users, extra["users"]])
        splits = pl.concat([splits, extra["splits"]])
    splits = splits.cast(SCHEMAS["splits"]).sort(PAIR)
    graph = synthetic_kg(items, seed=kg_rng, num_entities=num_entities, num_relations=num_relations,
                         num_triples=num_triples, zipf=zipf)
    return KG(
        **graph,
        users=user_table,
        interactions=splits.select(*PAIR, pl.lit(1.0).alias("weight"), pl.lit(None, pl.Datetime("us", "UTC"))
                                   .alias("ts")),
        splits=splits,
    )


def synthetic_kg(
    items: pl.DataFrame,
    *,
    seed: int | np.random.Generator = 2026,
    num_entities: int = NUM_ENTITIES,
    num_relations: int = NUM_RELATIONS,
    num_triples: int = NUM_TRIPLES,
    zipf: float = 1.0,
) -> dict[str, pl.DataFrame]:
    """A seeded SYNTHETIC item KG for ``items`` (``item_index, item_id``): ``entities, relations, triples,
    item_entity``.

    - Entities ``0 .. num_entities - 1`` (``urn:kgrec:synthetic:entity:<id>``, label ``synthetic entity <id>``,
      kind attribute), except the items: a seeded random subset of the entity ids (not the first ids), item
      ``i`` on the ``i``-th drawn id, labelled with its ``item_id``, kind item.
    - Relations ``0 .. num_relations - 1`` (``urn:kgrec:synthetic:relation:<r>``, ``synthetic relation <r>``).
    - ``num_triples`` distinct triples, no self-loops: head and relation uniform; the tail is the entity of rank
      ``k`` in a seeded random order of the entities, ``P(k) ∝ k^-zipf`` (``k = 1 .. num_entities``; ``zipf=0``
      is uniform). Duplicates and self-loops are dropped and redrawn (vectorised rounds) until the count is exact.
    """
    if zipf < 0:
        raise ValueError(f"zipf must be >= 0, got {zipf}")
    if items.height > num_entities:
        raise ValueError(f"{items.height:,} items do not fit among {num_entities:,} entities")
    if not 0 <= num_triples <= num_entities * (num_entities - 1) * num_relations:
        raise ValueError(f"{num_triples:,} distinct triples without self-loops do not fit {num_entities:,} "
                         f"entities and {num_relations} relations")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    item_entities = rng.choice(num_entities, size=items.height, replace=False)  # item_index i -> item_entities[i]
    tail_order = rng.permutation(num_entities)  # tail_order[k - 1]: the entity of Zipf rank k
    weights = np.arange(1, num_entities + 1, dtype=np.float64) ** -zipf
    cdf = np.cumsum(weights) / weights.sum()
    keys = _distinct_triple_keys(rng, cdf, tail_order, num_entities, num_relations, num_triples)
    heads, rest = np.divmod(keys, num_relations * num_entities)
    relation_ids, tails = np.divmod(rest, num_entities)

    item_entity = items.select("item_index", "item_id", pl.Series("entity_id", item_entities)).cast(
        SCHEMAS["item_entity"])
    entities = (
        pl.DataFrame({"entity_id": np.arange(num_entities)}).cast({"entity_id": pl.Int32})
        .join(item_entity.select("entity_id", "item_id"), on="entity_id", how="left")
        .select(
            "entity_id",
            pl.format(f"{ENTITY_IRI}{{}}", "entity_id").alias("iri"),
            pl.coalesce("item_id", pl.format("synthetic entity {}", "entity_id")).alias("label"),
            pl.when(pl.col("item_id").is_null()).then(pl.lit("attribute")).otherwise(pl.lit("item")).alias("kind"),
            pl.lit(False).alias("retired"),
        )
    )
    relations = pl.DataFrame({"relation_id": np.arange(num_relations)}).cast({"relation_id": pl.Int32}).select(
        "relation_id",
        pl.format(f"{RELATION_IRI}{{}}", "relation_id").alias("iri"),
        pl.format("synthetic relation {}", "relation_id").alias("label"),
        pl.lit(None, pl.Int32).alias("inverse_of"),
        pl.lit(False).alias("retired"),
    )
    triples = pl.DataFrame({"head_id": heads, "relation_id": relation_ids, "tail_id": tails}).cast(SCHEMAS["triples"])
    return {"entities": entities, "relations": relations, "triples": triples, "item_entity": item_entity}


def publish(home: Path, kg: KG, run_date: date, *, validated: bool = True) -> int:
    """Write ``kg`` into the lake under ``home`` as a KG version for ``run_date``, validate it and publish it.

    The version is written as ``kgrec build`` writes one (:meth:`pipeline.lake.Lake.write`, manifest with
    ``run_date`` and counts), then the ``validate`` and ``publish`` steps run on it, so it passes the same gate
    and ``_CURRENT`` moves as in the nightly pipeline; the ``train`` and ``score`` steps then read it as the
    published KG. The drift band is open (a benchmark home may hold a KG of another scale before), every
    other check applies. Returns the version; raises the steps' errors (``ValidationFailed``,
    ``PublishRefused``: a ``run_date`` older than the published version's). ``validated=False`` skips the two steps
    and moves ``_CURRENT`` directly: for a benchmark home on a machine without Great Expectations.
    """
    from pipeline import kg_store
    from pipeline.lake import Lake
    from pipeline.settings import load_settings
    from pipeline.steps.publish import publish as publish_step
    from pipeline.steps.validate import validate

    settings = load_settings("sample", overrides={"home": str(home), "kg": {"max_shrink": 1.0, "max_growth": None}},
                             environ={})
    lake = Lake(settings.lake_root)
    counts = kg.counts()
    version = kg_store.version_to_build(lake, run_date)
    description = {"dataset": "amazon-book-scale", "synthetic": "KG, item entity ids and synthetic-user-* users",
                   "real": "KGAT amazon-book users, items and train/test pairs", "counts": counts}
    lake.write(
        kg_store.DATASET, kg_store.key(version), kg.tables(),
        config_hash=hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest(),
        extra={"run_date": run_date.isoformat(), "profile": "amazon-book-scale", "counts": counts,
               "triples_by_relation": kg.triples_by_relation(), "description": description},
    )
    if not validated:  # a machine without Great Expectations (the GPU benchmark's): published unvalidated
        lake.publish(kg_store.DATASET, kg_store.key(version))
        return version
    validate(settings, run_date)
    publish_step(settings, run_date)
    return version


def _files(folder: Path) -> dict[str, Path]:
    """``{name: path}`` of the plain or ``.gz`` files read; kg_final.txt is not needed (nor present)."""
    found = {name: next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None) for name in FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise BenchmarkIncomplete.for_folder(folder, missing)
    return found  # type: ignore[return-value]


def _hold_out_valid(train: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    """``user_index, item_index, split``: ``floor(share x n)`` random train pairs to valid, one per user kept."""
    keyed = train.with_columns(pl.Series("_r", rng.random(train.height)))
    candidates = keyed.with_row_index("_row").filter(pl.col("_r") != pl.col("_r").min().over("user_index"))
    n_valid = math.floor(share * train.height)
    if n_valid > candidates.height:
        raise ValueError(f"valid_share {share} asks for {n_valid:,} valid pairs; only {candidates.height:,} train "
                         "pairs can go while every user keeps one")
    chosen = candidates["_row"].gather(np.sort(rng.choice(candidates.height, size=n_valid, replace=False)))
    return keyed.with_row_index("_row").select(
        *PAIR, pl.when(pl.col("_row").is_in(chosen.implode())).then(pl.lit("valid")).otherwise(pl.lit("train"))
        .alias("split"))


def _synthetic_users(train: pl.DataFrame, first: int, count: int, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    """``count`` SYNTHETIC users from ``user_index`` ``first``, each a copy of a random real user's train pairs."""
    copied = rng.integers(0, first, size=count)
    new = pl.DataFrame({"user_index": np.arange(first, first + count), "source": copied}).cast(pl.Int32)
    return {
        "users": new.select("user_index", pl.format(f"{SYNTHETIC_USER}{{}}", pl.col("user_index") - first)
                            .alias("user_id")),
        "splits": new.join(train.rename({"user_index": "source"}), on="source")
        .select("user_index", "item_index", pl.lit("train").alias("split")),
    }


def _distinct_triple_keys(rng: np.random.Generator, cdf: np.ndarray, tail_order: np.ndarray, num_entities: int,
                          num_relations: int, num_triples: int) -> np.ndarray:
    """Sorted keys ``(head x R + relation) x E + tail`` of ``num_triples`` distinct triples without self-loops.

    Each round draws what is missing plus a margin, drops self-loops and repeats (the first draw of a triple
    is kept), until enough are drawn; the first ``num_triples`` in draw order are kept.
    """
    keys = np.empty(0, dtype=np.int64)
    while keys.size < num_triples:
        need = num_triples - keys.size
        size = need + need // 16 + 1024
        heads = rng.integers(0, num_entities, size=size, dtype=np.int64)
        relations = rng.integers(0, num_relations, size=size, dtype=np.int64)
        ranks = np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), num_entities - 1)
        tails = tail_order[ranks].astype(np.int64)
        fresh = ((heads * num_relations + relations) * num_entities + tails)[heads != tails]
        keys = np.concatenate([keys, fresh])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]  # distinct, in draw order
    return np.sort(keys[:num_triples])
