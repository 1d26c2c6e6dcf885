"""Batch scoring: each user's top-K unseen items from a trained model, and the model's best paths to them.

``top_k`` scores users in chunks with ``score_all`` on the model's device, masks every item the user already had
(all splits: what a user interacted with is not news to them) to ``-inf`` with one scatter per chunk, and keeps
``torch.topk``. Items without interactions (cold-start items) are scored like any other. ``best_paths`` asks the
:class:`models.explain.Explainer` for the recommended items of a chunk of users at once (one path search and one
``path_scores`` call per chunk, on the model's device) and returns the paths as one flat table of tensors, which
:mod:`pipeline.explain_text` turns into text and JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from tqdm import tqdm

from models.data import SPLIT_NAMES, RecData
from models.explain import Explainer
from models.graph import csr_pointer, expand_ranges

log = logging.getLogger("kgrec.score")


class ScoringError(ValueError):
    """The model cannot score this data (non-finite scores, unknown users)."""


@dataclass(frozen=True)
class TopK:
    """R recommendations: users, items, scores, ranks (1 = best), each (R,), grouped by user, best first."""

    users: torch.Tensor
    items: torch.Tensor
    scores: torch.Tensor
    ranks: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)


def seen_items(data: RecData) -> tuple[torch.Tensor, torch.Tensor]:
    """(pointer (num_users + 1,), items) of every user's interactions in any split, as CSR."""
    users = torch.cat([data.splits[s].users for s in SPLIT_NAMES])
    items = torch.cat([data.splits[s].items for s in SPLIT_NAMES])
    order = torch.argsort(users, stable=True)
    return csr_pointer(users, data.num_users), items[order]


@torch.inference_mode()
def top_k(model: torch.nn.Module, data: RecData, users: torch.Tensor, k: int, *, chunk: int = 1024,
          device: torch.device | str = "cpu", progress: bool = True) -> TopK:
    """The ``k`` best unseen items of each of ``users`` (fewer for a user who has seen all but a few), in
    user_index order."""
    model.eval()
    device = torch.device(device)
    users = torch.unique(users)  # sorted: the rows come out grouped by user in user order
    pointer, seen = seen_items(data)
    pointer, seen = pointer.to(device), seen.to(device)
    k = min(k, data.num_items)
    out: list[tuple[torch.Tensor, ...]] = []
    bar = tqdm(total=len(users), desc="score", unit="user", disable=not progress, leave=False)
    for start in range(0, len(users), chunk):
        batch = users[start : start + chunk].to(device)
        scores = model.score_all(batch).float().contiguous()  # (B, n_items); a copy of a broadcast view (pop)
        bad = torch.isnan(scores).any(dim=1)
        if bad.any():
            raise ScoringError(f"the model gave NaN scores for users {batch[bad][:5].tolist()} (user_index): "
                               "it is not usable; retrain it")
        row, _, at = expand_ranges(pointer[batch], pointer[batch + 1] - pointer[batch])
        scores[row, seen[at]] = float("-inf")
        values, items = torch.topk(scores, k, dim=1)  # (B, k), best first
        keep = torch.isfinite(values)  # -inf: the user had every remaining item
        ranks = torch.arange(1, k + 1, device=device).expand_as(items)
        owner = batch[:, None].expand_as(items)
        out.append(tuple(t[keep].cpu() for t in (owner, items, values, ranks)))
        bar.update(len(batch))
    bar.close()
    if not out:
        empty = torch.zeros(0, dtype=torch.long)
        return TopK(empty, empty, torch.zeros(0), empty)
    users_, items_, scores_, ranks_ = (torch.cat(parts) for parts in zip(*out, strict=True))
    return TopK(users_, items_, scores_, ranks_)


@dataclass(frozen=True)
class PathRows:
    """P explanation paths, flat: the recommendation they explain (user, item: (P,)), their rank among its paths
    (1 = best), score, length (1..3), entities (P, 4) from the history item's entity (entity indices, a user node
    being ``num_entities + user``), relations and inverse (P, 3) per hop (padding -1 / False past ``length``)."""

    users: torch.Tensor
    items: torch.Tensor
    path_rank: torch.Tensor
    scores: torch.Tensor
    length: torch.Tensor
    history_item: torch.Tensor
    entities: torch.Tensor
    relations: torch.Tensor
    inverse: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)


# users per path search. Measured (amazon-book's interactions, 100k users, a synthetic 650k-triple KG, each user's
# top 3 popular items, KGAT's collaborative graph: the worst case seen): ~7 MB per user at the peak on a GPU (1024
# users: 7.5 GiB, 4096: 28 GiB, the same 4.2 s for all users), and on 1 CPU thread smaller chunks ran faster
# (64-128 users: 1.7-1.8 ms per user, 256-512: 2.6).
CHUNK_USERS = {"cpu": 128, "cuda": 2048}


def best_paths(explainer: Explainer, recs: TopK, per_item: int, *, explain_top: int | None = None,
               chunk_users: int | None = None, progress: bool = True) -> PathRows:
    """Up to ``per_item`` best paths for each user's first ``explain_top`` recommendations (None: every one), by
    :meth:`~models.explain.Explainer.best_many` over chunks of ``chunk_users`` users (no loop over users).

    Memory grows linearly with the chunk: with the paths of its users (all of them are scored before the best are
    kept; thousands per user with a heavy history on a collaborative graph) and the middle hops searched (see
    :meth:`~models.paths.PathFinder.find_many`). The default chunk is :data:`CHUNK_USERS` of the explainer's device
    type: about 1 GB at the peak on the CPU, 14 GB on a GPU in the worst case measured."""
    asked = recs.ranks <= explain_top if explain_top is not None else torch.ones(len(recs), dtype=torch.bool)
    users, items = recs.users[asked], recs.items[asked]  # grouped by user, best first
    if per_item < 1 or not len(users):
        return _no_rows()
    owners, owner = torch.unique_consecutive(users, return_inverse=True)  # (U,), (R,) row of each in owners
    chunk = chunk_users or CHUNK_USERS.get(explainer.device.type, CHUNK_USERS["cpu"])
    pointer = csr_pointer(owner, len(owners)).tolist()
    parts = []
    bar = tqdm(total=len(owners), desc="explain", unit="user", disable=not progress, leave=False)
    for start in range(0, len(owners), chunk):  # over chunks of users
        lo, hi = pointer[start], pointer[min(start + chunk, len(owners))]
        best = explainer.best_many(owners[start : start + chunk], items[lo:hi], per_item, owner=owner[lo:hi] - start)
        p = best.paths
        parts.append((users[lo:hi][p.candidate], items[lo:hi][p.candidate], best.rank + 1, best.scores, p.length,
                      p.item, p.entities, p.relations, p.inverse))
        bar.update(min(chunk, len(owners) - start))
    bar.close()
    return PathRows(*(torch.cat(column) for column in zip(*parts, strict=True)))


def _no_rows() -> PathRows:
    z = torch.zeros(0, dtype=torch.long)
    return PathRows(z, z, z, torch.zeros(0), z, z, torch.zeros(0, 4, dtype=torch.long),
                    torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3, dtype=torch.bool))
