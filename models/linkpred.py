"""Filtered link prediction for a :class:`~models.base.KGEModel`: MRR, Hits@{1,3,10} and mean rank.

Each test triple ``(h, r, t)`` asks two queries: rank the true tail among all entities by ``score_t(h, r)``,
and the true head by ``score_h(r, t)``. In the *filtered* setting (Bordes et al., NeurIPS 2013) the other
known answers of a query (every ``(h, r, e)``, resp. ``(e, r, t)``, in ``known``) are set to ``-inf`` first.
Ties get the realistic rank, the mean of the optimistic and the pessimistic rank (as PyKEEN). The metrics
are means over both directions.

Filtering is vectorised: known triples become sorted int64 keys ``(query * R + r) * N + answer``, so the
known answers of one query are one contiguous run of keys, found with ``searchsorted``. Only batches loop.
"""

from __future__ import annotations

import torch

from models.base import KGEModel
from models.evaluation import realistic_rank
from models.typing import BoolTensor, FloatTensor, LongTensor

Triples = tuple[LongTensor, LongTensor, LongTensor]
HITS_AT = (1, 3, 10)


def known_mask(sorted_keys: LongTensor, first_keys: LongTensor, num_entities: int) -> BoolTensor:
    """Which entities are known answers of each query.

    sorted_keys: shape (K,), the sorted keys of the known triples; first_keys: shape (B,), each query's key
    for answer 0 (so answer e has key ``first_keys[b] + e``) -> shape (B, num_entities).
    """
    start = torch.searchsorted(sorted_keys, first_keys)  # (B,)
    counts = torch.searchsorted(sorted_keys, first_keys + num_entities) - start  # (B,)
    rows = torch.repeat_interleave(torch.arange(len(first_keys), device=first_keys.device), counts)  # (F,)
    run_start = torch.repeat_interleave(counts.cumsum(0) - counts, counts)  # (F,) offset of each row's run
    positions = start[rows] + torch.arange(len(rows), device=rows.device) - run_start  # (F,)
    mask = torch.zeros(len(first_keys), num_entities, dtype=torch.bool, device=first_keys.device)
    mask[rows, sorted_keys[positions] - first_keys[rows]] = True
    return mask


def _filtered_rank(scores: FloatTensor, target: LongTensor, sorted_keys: LongTensor,
                   first_keys: LongTensor) -> FloatTensor:
    """Realistic rank of the target after the other known answers are set to -inf. scores: (B, N) -> (B,)."""
    mask = known_mask(sorted_keys, first_keys, scores.shape[1])  # (B, N)
    mask[torch.arange(len(target), device=target.device), target] = False
    return realistic_rank(scores.masked_fill(mask, float("-inf")), target)


@torch.no_grad()
def link_prediction(model: KGEModel, test: Triples, known: Triples, batch_size: int = 256) -> dict[str, float]:
    """Filtered tail and head prediction of the ``test`` triples.

    test, known: ``(heads, relations, tails)``, each shape (T,) resp. (K,), on the model's device; ``known``
    holds every true triple (train, valid and test) for filtering. Returns ``mrr``, ``hits@1``, ``hits@3``,
    ``hits@10`` and ``mean_rank``, each averaged over the 2T queries.
    """
    if len(test[0]) == 0:
        raise ValueError("link_prediction needs at least one test triple")
    n, m = model.num_entities, model.num_relations
    known_h, known_r, known_t = (x.long() for x in known)  # int64 keys: int32 ids would overflow
    tail_keys = torch.sort((known_h * m + known_r) * n + known_t).values  # (K,) answers t of (h, r, ?)
    head_keys = torch.sort((known_t * m + known_r) * n + known_h).values  # (K,) answers h of (?, r, t)
    was_training = model.training
    model.eval()
    ranks = []
    for start in range(0, len(test[0]), batch_size):
        h, r, t = (x[start:start + batch_size].long() for x in test)  # (B,) each
        ranks.append(_filtered_rank(model.score_t(h, r), t, tail_keys, (h * m + r) * n))
        ranks.append(_filtered_rank(model.score_h(r, t), h, head_keys, (t * m + r) * n))
    model.train(was_training)
    rank = torch.cat(ranks)  # (2T,)
    hits = {f"hits@{k}": (rank <= k).double().mean().item() for k in HITS_AT}
    return {"mrr": rank.reciprocal().mean().item(), **hits, "mean_rank": rank.mean().item()}
