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

Everything runs on the model's device, in user chunks (on CUDA as many users as ``GPU_EVAL_CELLS`` scores allow):
scores, masks, ranks and the metric sums stay there, and one transfer brings the sums back. Metrics at K only need
the ranks of targets that can be within the top K, so a chunk takes one ``topk`` instead of sorting every row
(:func:`ranks_within`).
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
GPU_EVAL_CELLS = 1 << 26  # scores per user chunk on CUDA (256 MB in fp32)


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


def ranks_within(scores: FloatTensor, targets: FloatTensor, k: int) -> FloatTensor:
    """:func:`realistic_ranks` of the targets that can rank within the top ``k``; ``inf`` for those below the k-th
    best score (their realistic rank is above k). scores: (B, N); targets: (B, P) -> (B, P).

    With ``kth`` a row's k-th best score: a target below it has k scores above it; one above it has all the scores
    that beat or tie it among the top k; one equal to it ties with every score equal to ``kth`` in the row.
    """
    top = scores.topk(min(k, scores.shape[1]), dim=1).values  # (B, k) best first
    kth = top[:, -1:]  # (B, 1)
    higher = (top[:, None, :] > targets[:, :, None]).sum(-1)  # (B, P)
    at_least = (top[:, None, :] >= targets[:, :, None]).sum(-1)  # (B, P) exact when the target beats kth
    ties = (scores == kth).sum(1, keepdim=True) - (top == kth).sum(1, keepdim=True)  # kth's ties outside the top
    at_least = torch.where(targets == kth, at_least + ties, at_least)
    ranks = (higher + 1 + at_least).double() / 2
    return torch.where(targets >= kth, ranks, torch.full_like(ranks, math.inf))


def user_chunk(batch_users: int, num_items: int, device: torch.device | str) -> int:
    """Users per evaluation chunk: ``batch_users`` on the CPU; on CUDA as many as ``GPU_EVAL_CELLS`` scores allow."""
    if torch.device(device).type != "cuda":
        return batch_users
    return max(batch_users, GPU_EVAL_CELLS // max(num_items, 1))


def metrics_from_ranks(ranks: FloatTensor, valid: BoolTensor, k: int) -> dict[str, FloatTensor]:
    """Per-user metrics at K. ranks: (B, P) target ranks; valid: (B, P) False for padding -> each (B,)."""
    hits = valid & (ranks <= k)  # (B, P)
    n_targets = valid.sum(1).double()  # (B,)
    n_hits = hits.sum(1).double()
    gains = torch.where(hits, 1.0 / torch.log2(ranks + 1), torch.zeros_like(ranks)).sum(1)
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=ranks.device))  # (K,)
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

    def __init__(self, pairs: Sequence[Pairs], num_users: int, device: torch.device | str = "cpu") -> None:
        users = torch.cat([p.users for p in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
        items = torch.cat([p.items for p in pairs]) if pairs else torch.zeros(0, dtype=torch.long)
        order = torch.argsort(users, stable=True)
        self.users, self.items = users[order].to(device), items[order].to(device)
        self.pointer = csr_pointer(users, num_users).to(device)

    def rows(self, chunk: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
        """(row in chunk, position within the user's list, item) of every pair of the chunk's users."""
        row, position, at = expand_ranges(self.pointer[chunk], self.pointer[chunk + 1] - self.pointer[chunk])
        return row, position, self.items[at]


class RankingEvaluator:
    """Full-ranking metrics of ``targets`` with the ``known`` pairs masked, on ``device``; the lookups are built once,
    so a validation split is evaluated every epoch without rebuilding them.

    ``candidates`` limits the ranking to those items (the cold-start split ranks the cold items only); targets
    outside it are dropped. Calling it on a model returns ``{"recall@20": ..., ..., "users": n}``.
    """

    def __init__(self, targets: Pairs, known: Sequence[Pairs], *, num_users: int, num_items: int,
                 ks: Sequence[int] = (20,), candidates: LongTensor | None = None, batch_users: int = 256,
                 device: torch.device | str = "cpu") -> None:
        self.ks, self.device = tuple(ks), torch.device(device)
        column = torch.arange(num_items)
        if candidates is not None:  # item -> column among the candidates, -1 when not a candidate
            column = torch.full((num_items,), -1, dtype=torch.long)
            column[candidates] = torch.arange(len(candidates))
            keep = column[targets.items] >= 0
            targets = Pairs(targets.users[keep], targets.items[keep])
        self.column = column.to(self.device)
        self.candidates = None if candidates is None else candidates.to(self.device)
        self.by_target = _ByUser([targets], num_users, self.device)
        self.by_known = _ByUser(list(known), num_users, self.device)
        self.users = torch.unique(targets.users).to(self.device)
        width = num_items if candidates is None else len(candidates)
        self.chunk = user_chunk(batch_users, width, self.device)

    @torch.no_grad()
    def __call__(self, model: RecModel) -> dict[str, float]:
        sums = {f"{m}@{k}": torch.zeros((), dtype=torch.float64, device=self.device)
                for k in self.ks for m in RANKING_METRICS}
        model.eval()
        for start in range(0, len(self.users), self.chunk):
            chunk = self.users[start : start + self.chunk]
            for name, values in self._chunk_metrics(model, chunk).items():
                sums[name] += values.sum()
        totals = torch.stack(list(sums.values())).tolist() if sums else []  # the one transfer back
        out = {name: total / max(len(self.users), 1) for name, total in zip(sums, totals, strict=True)}
        return {**out, "users": len(self.users)}

    def _chunk_metrics(self, model: RecModel, chunk: LongTensor) -> dict[str, FloatTensor]:
        scores = model.score_all(chunk).float()  # (B, num_items); may be a view of the model's own tensors
        if self.candidates is not None:
            scores = scores[:, self.candidates]  # (B, C)
        row, _, item = self.by_known.rows(chunk)
        col = self.column[item]
        hidden = col >= 0
        scores = scores.index_put((row[hidden], col[hidden]), scores.new_tensor(-math.inf))  # masked in a copy
        row, position, item = self.by_target.rows(chunk)
        width = int(position.max()) + 1 if len(position) else 1
        target_scores = torch.full((len(chunk), width), -math.inf, device=scores.device)
        valid = torch.zeros(len(chunk), width, dtype=torch.bool, device=scores.device)
        target_scores[row, position] = scores[row, self.column[item]]
        valid[row, position] = True
        ranks = ranks_within(scores, target_scores, max(self.ks))
        return {name: values for k in self.ks for name, values in metrics_from_ranks(ranks, valid, k).items()}


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
    """Full-ranking metrics of ``targets`` with the ``known`` pairs masked (:class:`RankingEvaluator`, used once)."""
    return RankingEvaluator(targets, known, num_users=model.num_users, num_items=model.num_items, ks=ks,
                            candidates=candidates, batch_users=batch_users, device=device)(model)


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
