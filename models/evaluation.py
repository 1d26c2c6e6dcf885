"""One evaluator for every recommender, vectorised and in user chunks so memory stays bounded.

Protocols (name which one a number uses; papers in this field often differ):
- ``ranking`` (KGAT, RecBole): each user's held-out items are ranked against *all* candidate items,
  with the items the user is already known to have (train; train + valid for test) masked to -inf.
  Recall@K = hits / |targets|; Precision@K = hits / K; Hit@K = any hit; MRR@K = 1 / best hit rank
  (0 without a hit); NDCG@K = DCG / IDCG with DCG = sum over hits of 1 / log2(rank + 1) and IDCG the
  DCG of min(|targets|, K) hits at the top (the standard definition). Averaged over users with a target.
- ``ctr`` (KGCN, KGNN-LS, RippleNet): each test positive and one sampled negative are scored;
  AUC (Mann-Whitney, tied scores count half) and F1 of ``sigmoid(score) >= 0.5``.

Ties: ranks are PyKEEN's *realistic* ranks, the mean of the optimistic (1 + #higher) and pessimistic
(#higher + #equal, itself included) ranks, so a constant scorer is not rewarded by sort order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from models.base import RecModel
from models.data import Pairs
from models.graph import csr_pointer, expand_ranges
from models.typing import BoolTensor, FloatTensor, LongTensor

RANKING_METRICS = ("recall", "ndcg", "precision", "hit", "mrr")


def realistic_rank(scores: FloatTensor, target: LongTensor) -> FloatTensor:
    """Rank of ``scores[b, target[b]]`` in row b, ties averaged. scores: (B, N); target: (B,) -> (B,).

    One target per row (link prediction): two comparisons, no sort. :func:`realistic_ranks` is the same
    rank for many targets per row.
    """
    true = scores.gather(1, target.unsqueeze(1))  # (B, 1)
    optimistic = 1 + (scores > true).sum(1)  # (B,)
    pessimistic = (scores >= true).sum(1)  # (B,)
    return (optimistic + pessimistic).double() / 2


def realistic_ranks(scores: FloatTensor, targets: FloatTensor) -> FloatTensor:
    """Rank (1 = best) of each target score among its row. scores: (B, N); targets: (B, P) -> (B, P).

    Many targets per row (ranking evaluation): one sort, then ``searchsorted`` per target.
    """
    ascending = scores.sort(dim=1).values.contiguous()
    n = scores.shape[1]
    higher = n - torch.searchsorted(ascending, targets.contiguous(), right=True)
    at_least = n - torch.searchsorted(ascending, targets.contiguous(), right=False)
    return (higher + 1 + at_least).double() / 2


def metrics_from_ranks(ranks: FloatTensor, valid: BoolTensor, k: int) -> dict[str, FloatTensor]:
    """Per-user metrics at K. ranks: (B, P) target ranks; valid: (B, P) False for padding -> each (B,)."""
    hits = valid & (ranks <= k)  # (B, P)
    n_targets = valid.sum(1).double()  # (B,)
    n_hits = hits.sum(1).double()
    gains = torch.where(hits, 1.0 / torch.log2(ranks + 1), torch.zeros_like(ranks)).sum(1)
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))  # (K,)
    ideal = torch.cumsum(discounts, 0)[(n_targets.clamp(1, k) - 1).long()]
    best = torch.where(hits, ranks, torch.full_like(ranks, math.inf)).min(1).values
    return {
        f"recall@{k}": n_hits / n_targets.clamp_min(1),
        f"ndcg@{k}": gains / ideal,
        f"precision@{k}": n_hits / k,
        f"hit@{k}": (n_hits > 0).double(),
        f"mrr@{k}": torch.where(torch.isfinite(best), 1.0 / best, torch.zeros_like(best)),
    }


class _ByUser:
    """Pairs grouped by user for chunked lookups: pointer (num_users + 1,) into items sorted by user."""

    def __init__(self, pairs: Sequence[Pairs], num_users: int) -> None:
        users = torch.cat([p.users for p in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
        items = torch.cat([p.items for p in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
        order = torch.argsort(users, stable=True)
        self.users, self.items = users[order], items[order]
        self.pointer = csr_pointer(users, num_users)

    def rows(self, chunk: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
        """(row in chunk, position within the user's list, item) of every pair of the chunk's users."""
        row, position, at = expand_ranges(self.pointer[chunk], self.pointer[chunk + 1] - self.pointer[chunk])
        return row, position, self.items[at]


@torch.no_grad()
def ranking_metrics(
    model: RecModel,
    targets: Pairs,
    known: Sequence[Pairs],
    *,
    ks: Sequence[int] = (20,),
    candidates: LongTensor | None = None,
    batch_users: int = 256,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Full-ranking metrics of ``targets`` with the ``known`` pairs masked.

    ``candidates`` limits the ranking to those items (the cold-start split ranks the cold items only);
    targets outside it are dropped. Returns ``{"recall@20": ..., ..., "users": n}``.
    """
    num_items = model.num_items
    column = torch.arange(num_items)
    if candidates is not None:  # item -> column among the candidates, -1 when not a candidate
        column = torch.full((num_items,), -1, dtype=torch.long)
        column[candidates] = torch.arange(len(candidates))
        keep = column[targets.items] >= 0
        targets = Pairs(targets.users[keep], targets.items[keep])
    by_target, by_known = _ByUser([targets], model.num_users), _ByUser(list(known), model.num_users)
    users = torch.unique(targets.users)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in RANKING_METRICS}
    model.eval()
    for start in range(0, len(users), batch_users):
        chunk = users[start : start + batch_users]
        scores = model.score_all(chunk.to(device)).float().cpu().clone()  # (B, num_items), ours to mask in place
        if candidates is not None:
            scores = scores[:, candidates]  # (B, C)
        row, _, item = by_known.rows(chunk)
        col = column[item]
        scores[row[col >= 0], col[col >= 0]] = -math.inf
        row, position, item = by_target.rows(chunk)
        width = int(position.max()) + 1
        target_scores = torch.full((len(chunk), width), -math.inf)
        valid = torch.zeros(len(chunk), width, dtype=torch.bool)
        target_scores[row, position] = scores[row, column[item]]
        valid[row, position] = True
        ranks = realistic_ranks(scores, target_scores)
        for k in ks:
            for name, values in metrics_from_ranks(ranks, valid, k).items():
                sums[name] += float(values.sum())
    out = {name: total / max(len(users), 1) for name, total in sums.items()}
    return {**out, "users": len(users)}


def auc(pos: FloatTensor, neg: FloatTensor) -> float:
    """Area under the ROC curve of positive vs negative scores; tied scores count one half."""
    scores = torch.cat([pos, neg]).double()
    values, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts  # (G,) 0-based first position of each tie group
    average_rank = first.double() + (counts.double() + 1) / 2  # 1-based mean rank of the group
    rank_sum = average_rank[inverse[: len(pos)]].sum()
    n_pos, n_neg = len(pos), len(neg)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def f1(pos: FloatTensor, neg: FloatTensor, threshold: float = 0.0) -> float:
    """F1 of predicting "positive" when a logit is >= ``threshold`` (sigmoid >= 0.5 at 0)."""
    tp = float((pos >= threshold).sum())
    fp = float((neg >= threshold).sum())
    fn = len(pos) - tp
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@torch.no_grad()
def pair_scores(model: RecModel, users: LongTensor, items: LongTensor, *, batch_size: int = 4096,
                device: torch.device | str = "cpu") -> FloatTensor:
    """``model.score`` in batches. users, items: shape (P,) -> (P,)."""
    model.eval()
    parts = [model.score(users[s : s + batch_size].to(device), items[s : s + batch_size].to(device)).float().cpu()
             for s in range(0, len(users), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0)


def ctr_metrics(model: RecModel, positives: Pairs, negatives: LongTensor, *, batch_size: int = 4096,
                device: torch.device | str = "cpu") -> dict[str, float]:
    """AUC and F1 over ``positives`` and one negative item per positive (same user). negatives: (P,)."""
    pos = pair_scores(model, positives.users, positives.items, batch_size=batch_size, device=device)
    neg = pair_scores(model, positives.users, negatives, batch_size=batch_size, device=device)
    return {"auc": auc(pos, neg), "f1": f1(pos, neg), "pairs": len(pos)}
