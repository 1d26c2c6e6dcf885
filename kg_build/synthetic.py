"""Seeded synthetic users with a clear preference structure, for a catalog with no interaction log.

Each user has one taste: a director, an actor or a genre that at least ``min_taste_items`` items
share. A share ``affinity`` of the user's interactions (binomially drawn) goes to items with that
taste, the rest to other items (fewer when the taste has few items, so the share holds). Within
each group items are drawn without replacement in proportion to a seeded Zipf popularity (Gumbel
top-k, vectorised over a chunk of users). Taste
items get ratings 4-5, others 1-5. The same seed gives the same users, byte for byte.

These interactions are SYNTHETIC: they exist to exercise the pipeline and to let tests check that
a model recovers a known preference, never to report model quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from kg_build.schema import INTERACTIONS, polars_schema

# list column of the catalog -> (name of the taste kind, probability a user has such a taste)
TASTES = {"directors": ("director", 0.3), "cast": ("actor", 0.3), "genres": ("genre", 0.4)}
START = datetime(2024, 1, 1, tzinfo=UTC)
CHUNK_USERS = 2048
MIN_ITEMS = 5


@dataclass(frozen=True)
class SyntheticUsers:
    interactions: pl.DataFrame  # the INTERACTIONS contract
    profiles: pl.DataFrame  # user_id, taste_kind, taste_value, n_items, n_taste_items


def generate(
    items: pl.DataFrame,
    *,
    users: int,
    seed: int,
    mean_items: int = 25,
    affinity: float = 0.8,
    min_taste_items: int = 5,
    days: int = 365,
) -> SyntheticUsers:
    """Generate ``users`` users over ``items`` (which need ``item_id`` and list columns of TASTES)."""
    kinds = [col for col in TASTES if col in items.columns]
    if not kinds:
        raise ValueError(f"items need at least one of the list columns {list(TASTES)} to build tastes")
    rng = np.random.default_rng(seed)
    n_items = items.height
    item_ids = items["item_id"].to_numpy()

    # (taste, item) membership: one row per item and each of its directors / actors / genres
    members = pl.concat(
        [
            items.with_row_index("item").select(
                "item", pl.lit(TASTES[col][0]).alias("kind"), pl.col(col).alias("value")
            ).explode("value")
            for col in kinds
        ]
    ).drop_nulls("value")
    tastes = (
        members.group_by("kind", "value").agg(pl.len().alias("n"))
        .filter(pl.col("n") >= min_taste_items)
        .sort("kind", "value")
        .with_row_index("taste")
    )
    if tastes.is_empty():
        raise ValueError(f"no director, actor or genre is shared by {min_taste_items} items: no tastes to give")
    kind_weight = {TASTES[col][0]: TASTES[col][1] for col in kinds}
    per_kind = tastes.group_by("kind").agg(pl.len().alias("k"))
    tastes = tastes.join(per_kind, on="kind", maintain_order="left").with_columns(
        (pl.col("kind").replace_strict(kind_weight, return_dtype=pl.Float64) / pl.col("k")).alias("p")
    )
    p = tastes["p"].to_numpy()
    choice = rng.choice(tastes.height, size=users, p=p / p.sum())  # (U,)

    pairs = members.join(tastes.select("kind", "value", "taste"), on=["kind", "value"])
    membership = np.zeros((tastes.height, n_items), dtype=bool)
    membership[pairs["taste"].to_numpy(), pairs["item"].to_numpy()] = True

    log_pop = -0.8 * np.log1p(rng.permutation(n_items).astype(np.float64))  # Zipf over a seeded ranking
    n_user = np.rint(rng.lognormal(np.log(mean_items), 0.5, size=users))
    n_user = np.clip(n_user, MIN_ITEMS, max(MIN_ITEMS, n_items // 2)).astype(np.int64)

    user_idx, item_idx, is_taste, n_taste_all, n_drawn = [], [], [], [], []
    for lo in range(0, users, CHUNK_USERS):
        hi = min(users, lo + CHUNK_USERS)
        match = membership[choice[lo:hi]]  # (C, I)
        n = np.minimum(n_user[lo:hi], n_items)
        n_taste = np.minimum(rng.binomial(n, affinity), match.sum(1))
        # a small taste (a director with 5 films) shrinks the rest too, keeping the share near affinity
        keep_share = np.maximum(np.ceil(n_taste * (1 - affinity) / affinity), MIN_ITEMS - n_taste)
        n_other = np.minimum(np.minimum(n - n_taste, keep_share.astype(np.int64)), (~match).sum(1))
        keys = log_pop[None, :] + rng.gumbel(size=match.shape)  # (C, I)
        for group, count in ((match, n_taste), (~match, n_other)):
            order = np.argsort(np.where(group, -keys, np.inf), axis=1, kind="stable")  # best first
            take = np.arange(n_items)[None, :] < count[:, None]  # (C, I)
            user_idx.append(np.nonzero(take)[0] + lo)
            item_idx.append(order[take])
            is_taste.append(np.full(int(count.sum()), group is match))
        n_taste_all.append(n_taste)
        n_drawn.append(n_taste + n_other)
    users_arr, items_arr = np.concatenate(user_idx), np.concatenate(item_idx)
    taste_arr = np.concatenate(is_taste)

    rating = np.where(
        taste_arr,
        rng.choice([4.0, 4.5, 5.0], size=taste_arr.size, p=[0.3, 0.3, 0.4]),
        rng.choice(np.arange(1.0, 5.5, 0.5), size=taste_arr.size),
    )
    seconds = rng.integers(0, days * 86400, size=taste_arr.size)
    width = max(4, len(str(users)))
    user_ids = np.char.add("u", np.char.zfill(np.arange(1, users + 1).astype(str), width))
    interactions = pl.DataFrame(
        {
            "user_id": user_ids[users_arr],
            "item_id": item_ids[items_arr],
            "weight": rating.astype(np.float32),
            "ts": pl.from_epoch(pl.Series(int(START.timestamp()) + seconds), time_unit="s"),
        }
    ).cast(polars_schema(INTERACTIONS)).sort("user_id", "ts")  # type: ignore[arg-type]
    chosen = tastes[choice]
    profiles = pl.DataFrame(
        {
            "user_id": user_ids,
            "taste_kind": chosen["kind"],
            "taste_value": chosen["value"],
            "n_items": np.concatenate(n_drawn),
            "n_taste_items": np.concatenate(n_taste_all),
        }
    )
    return SyntheticUsers(interactions=interactions, profiles=profiles)
