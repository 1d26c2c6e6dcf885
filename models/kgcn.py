"""KGCN: Knowledge Graph Convolutional Networks for recommender systems.

Wang, Zhao, Xie, Li, Guo, "Knowledge Graph Convolutional Networks for Recommender Systems", WWW 2019.
For user u and item v, the user-relation score ``pi(u, r) = <u, r> / d`` (the mean of ``u * r``, as in the
authors' code: it keeps the softmax from saturating as d grows) weighs each of the K neighbours
sampled for an entity (softmax over the K), the neighbourhood vector is ``v_N = (1/K) sum_k pi~_k e_k``
(the authors' code, and RecBole's, average the weighted vectors; the paper writes the plain sum, which gives
the neighbourhood K times more weight against the entity's own vector and generalised worse here), and
an aggregator combines it with the entity's own vector:

- ``sum``:      ``act(W (v + v_N) + b)``
- ``concat``:   ``act(W [v ; v_N] + b)``
- ``neighbor``: ``act(W v_N + b)``

H iterations over a receptive field of depth H (one aggregator per iteration; ReLU, tanh for the last)
give the user-specific item vector ``v^u``; ``s(u, v) = <u, v^u>``, trained with binary cross-entropy on
positives and sampled negatives plus ``l2 * (||u||^2 + ||v^u||^2) / 2`` per pair (RecBole's form).

Vectorised: the K neighbours of every entity are sampled once (:func:`models.graph.sample_neighbors`,
seeded) and stored as buffers. The receptive field of N items is gathered hop by hop (a loop over H,
never over nodes); its edge index is regular (each node's K children are contiguous), so the segment
softmax and the scatter-sum are :func:`models.nn.masked_softmax` and a weighted sum over a (..., K)
view, and ``score_all`` shares the user-independent gathers across users.
"""

from __future__ import annotations

from typing import Any, Self

import torch
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel, item_chunks
from models.data import RecData
from models.graph import KnowledgeGraph, sample_neighbors
from models.paths import PathSet, hop_sum
from models.typing import FloatTensor, LongTensor

AGGREGATORS = ("sum", "concat", "neighbor")


class Aggregator(nn.Module):
    """One KGCN aggregation layer. self_vectors: (R, M, d) with R in {1, B}; neighbourhood: (B, M, d)."""

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        if kind not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {kind!r}; expected one of {AGGREGATORS}")
        self.kind = kind
        self.linear = nn.Linear(2 * dim if kind == "concat" else dim, dim)
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, self_vectors: FloatTensor, neighbourhood: FloatTensor, last: bool) -> FloatTensor:
        if self.kind == "sum":
            x = self_vectors + neighbourhood
        elif self.kind == "concat":
            x = torch.cat([self_vectors.expand_as(neighbourhood), neighbourhood], dim=-1)
        else:
            x = neighbourhood
        out = self.linear(x)
        return torch.tanh(out) if last else torch.relu(out)


class KGCN(RecModel):
    graph_phases = ("cf",)
    precisions = ("fp32", "bf16")
    samples_graph = True

    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        embedding_dim: int = 16,
        neighbors: int = 8,
        hops: int = 1,
        aggregator: str = "sum",
        l2: float = 1e-4,
        seed: int = 0,
    ) -> None:
        super().__init__(num_users=num_users, num_items=kg.num_items)
        if hops < 1:
            raise ValueError(f"hops must be >= 1, got {hops}")
        self.hops, self.k, self.l2 = hops, neighbors, l2
        self.user = nn.Embedding(num_users, embedding_dim)
        self.entity = nn.Embedding(kg.num_entities, embedding_dim)
        self.relation = nn.Embedding(kg.num_relations, embedding_dim)
        for table in (self.user, self.entity, self.relation):
            nn.init.xavier_normal_(table.weight)
        self.layers = nn.ModuleList(Aggregator(aggregator, embedding_dim) for _ in range(hops))
        edge_index, edge_type = kg.undirected()
        sampled = sample_neighbors(edge_index, edge_type, kg.num_entities, neighbors,
                                   torch.Generator().manual_seed(seed))
        self.register_buffer("item_entity", kg.item_entity.clone())
        self.register_buffer("adj_entity", sampled.entity)  # (num_entities, K)
        self.register_buffer("adj_relation", sampled.relation)  # (num_entities, K)
        self.register_buffer("adj_mask", sampled.mask)  # (num_entities, K)

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        return cls(num_users=data.num_users, kg=data.kg, **hyper)

    def receptive_field(self, items: LongTensor) -> tuple[list[LongTensor], list[LongTensor], list[torch.Tensor]]:
        """Entities per hop, and the relations and masks of each hop's edges to its children.

        items: (R, N) -> entities[h]: (R, N K^h) for h = 0..H; relations[h], masks[h]: (R, N K^(h+1)).
        """
        rows = items.shape[0]
        entities, relations, masks = [self.item_entity[items]], [], []
        for _ in range(self.hops):
            parents = entities[-1]
            entities.append(self.adj_entity[parents].reshape(rows, -1))
            relations.append(self.adj_relation[parents].reshape(rows, -1))
            masks.append(self.adj_mask[parents].reshape(rows, -1))
        return entities, relations, masks

    def neighbour_weights(self, u: FloatTensor, relations: list[LongTensor], masks: list[torch.Tensor]) -> list:
        """Softmax of ``pi(u, r)`` over each node's K children. u: (B, d) -> per hop (B, M, K)."""
        per_relation = u @ self.relation.weight.T / u.shape[-1]  # (B, num_relations): pi(u, r) for every r
        weights = []
        for rel, mask in zip(relations, masks, strict=True):
            pi = per_relation[:, rel[0]] if len(rel) == 1 else per_relation.gather(1, rel)  # (B, M K)
            weights.append(kgnn.masked_softmax(pi.reshape(len(u), -1, self.k), mask.reshape(len(mask), -1, self.k)))
        return weights

    def item_vectors(self, u: FloatTensor, items: LongTensor) -> FloatTensor:
        """User-specific item vectors ``v^u``. u: (B, d); items: (R, N) with R in {1, B} -> (B, N, d)."""
        entities, relations, masks = self.receptive_field(items)
        weights = self.neighbour_weights(u, relations, masks)
        vectors = [self.entity(e) for e in entities]  # (R, N K^h, d)
        for i, layer in enumerate(self.layers):
            last = i == self.hops - 1
            vectors = [layer(vectors[h], _weighted_sum(weights[h], vectors[h + 1], self.k), last)
                       for h in range(self.hops - i)]
        return vectors[0].expand(len(u), -1, -1)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        u = self.user(users)  # (B, d)
        return (u * self.item_vectors(u, items[:, None])[:, 0]).sum(-1)

    def score_all(self, users: LongTensor) -> FloatTensor:
        u = self.user(users)  # (B, d)
        per_pair = self.k**self.hops + self.k ** (self.hops - 1) * self.entity.embedding_dim  # weights + vectors
        chunks = item_chunks(self.num_items, per_pair, len(users), u.device)
        parts = [torch.einsum("bd,bnd->bn", u, self.item_vectors(u, c[None])) for c in chunks]
        return torch.cat(parts, dim=1)  # (B, num_items)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """The user's relation attention along the path: ``sum_hops log softmax_r(pi(u, r))``. users: (P,)."""
        distinct, row = torch.unique(users, return_inverse=True)  # one softmax per user, not per path
        u = self.user(distinct)  # (U, d)
        log_attention = torch.log_softmax(u @ self.relation.weight.T / u.shape[-1], dim=-1)  # (U, num_relations)
        _, relations, _, valid = paths.hop_triples()
        return hop_sum(log_attention[row[:, None], relations.clamp_min(0)], valid)  # gathered: (P, 3)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        u = self.user(batch.users)  # (B, d)
        v_pos = self.item_vectors(u, batch.pos_items[:, None])[:, 0]  # (B, d)
        v_neg = self.item_vectors(u, batch.neg_items[:, None])[:, 0]
        pos, neg = (u * v_pos).sum(-1), (u * v_neg).sum(-1)
        return kgnn.bce_loss(pos, neg) + self.l2 * kgnn.l2_penalty(u, v_pos, v_neg)


def _weighted_sum(weights: FloatTensor, children: FloatTensor, k: int) -> FloatTensor:
    """Scatter-sum of weighted children into their parents, over K. weights: (B, M, K); children: (R, M K, d)
    -> (B, M, d)."""
    rows, _, dim = children.shape
    grouped = children.reshape(rows, -1, k, dim)  # (R, M, K, d)
    if rows == 1:
        return torch.einsum("bmk,mkd->bmd", weights, grouped[0]) / k
    return torch.einsum("bmk,bmkd->bmd", weights, grouped) / k
