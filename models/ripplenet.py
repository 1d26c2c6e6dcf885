"""RippleNet: propagating user preferences over the knowledge graph.

Wang, Zhang, Wang, Zhao, Li, Xie, Guo, "RippleNet: Propagating User Preferences on the Knowledge
Graph for Recommender Systems", CIKM 2018. User u's ripple set at hop h holds M triples
``(h_i, r_i, t_i)`` spreading out from u's training items (:func:`models.graph.ripple_sets`, built once,
seeded). For an item vector v, hop h attends over its memories with
``p_i = softmax_i(v^T R_i h_i)`` and reads ``o_h = sum_i p_i t_i``; the item vector is updated between
hops (``v <- W (v + o_h)``, the authors' "plus_transform"), the user vector is ``u = sum_h o_h`` and
``s(u, v) = <u, v>``. Loss: binary cross-entropy on positives and sampled negatives,
``- kge_weight * sum_h mean sigmoid(t^T R h)`` over each hop's memories in the batch (the same ``R h`` as
the attention; summed over hops as in the authors' code),
and ``l2 * (||h||^2 + ||t||^2 + ||R||^2 + ||v||^2) / 2`` per pair. Masked memories (a user with nothing
to spread to) get weight 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self

import torch
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel, item_chunks
from models.data import RecData
from models.graph import KnowledgeGraph, RippleSets, ripple_sets
from models.paths import PathSet, hop_mean
from models.typing import FloatTensor, LongTensor


class Memories(NamedTuple):
    h: FloatTensor  # (B, H, M, d)
    t: FloatTensor  # (B, H, M, d)
    rh: FloatTensor  # (B, H, M, d)  R_r h
    mask: torch.Tensor  # (B, H, M)


class RippleNet(RecModel):
    graph_phases = ("cf",)
    precisions = ("fp32", "bf16")
    samples_graph = True

    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        ripple: RippleSets,
        embedding_dim: int = 16,
        kge_weight: float = 0.01,
        l2: float = 1e-7,
    ) -> None:
        """ripple: the users' ripple sets, each tensor shape (num_users, H, M)."""
        super().__init__(num_users=num_users, num_items=kg.num_items)
        self.kge_weight, self.l2, self.dim = kge_weight, l2, embedding_dim
        self.hops = ripple.heads.shape[1]
        self.entity = nn.Embedding(kg.num_entities, embedding_dim)
        self.relation = nn.Embedding(kg.num_relations, embedding_dim * embedding_dim)  # R_r flattened
        self.transform = nn.Linear(embedding_dim, embedding_dim, bias=False)
        for weight in (self.entity.weight, self.relation.weight, self.transform.weight):
            nn.init.xavier_uniform_(weight)  # the authors' glorot-uniform, the transform included
        self.register_buffer("item_entity", kg.item_entity.clone())
        self.register_buffer("memory_heads", ripple.heads)
        self.register_buffer("memory_relations", ripple.relations)
        self.register_buffer("memory_tails", ripple.tails)
        self.register_buffer("memory_mask", ripple.mask)

    @classmethod
    def from_data(cls, data: RecData, *, hops: int = 2, memory: int = 32, seed: int = 0, **hyper: Any) -> Self:
        ripple = ripple_sets(data.kg, data.train.users, data.train.items, data.num_users, hops, memory,
                             torch.Generator().manual_seed(seed))
        return cls(num_users=data.num_users, kg=data.kg, ripple=ripple, **hyper)

    def memories(self, users: LongTensor) -> Memories:
        """The users' memories embedded: h, t, R h (B, H, M, d) and the mask (B, H, M)."""
        h = self.entity(self.memory_heads[users])
        r = self.relation(self.memory_relations[users]).unflatten(-1, (self.dim, self.dim))  # (B, H, M, d, d)
        rh = (r * h.unsqueeze(-2)).sum(-1)  # R h; faster on CPU than a bmm of many d x d matrices
        return Memories(h, self.entity(self.memory_tails[users]), rh, self.memory_mask[users])

    def propagate(self, memories: Memories, v: FloatTensor) -> tuple[FloatTensor, FloatTensor]:
        """User and updated item vectors. v: (R, N, d) with R in {1, B} -> u, v: (B, N, d)."""
        t, rh, mask = memories.t, memories.rh, memories.mask
        u = 0
        for hop in range(self.hops):  # over hops, not users or memories
            logits = torch.matmul(v, rh[:, hop].transpose(1, 2))  # (B, N, M)
            p = kgnn.masked_softmax(logits, mask[:, hop, None, :])
            o = torch.matmul(p, t[:, hop])  # (B, N, d)
            v = self.transform(v + o)
            u = u + o
        return u, v

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        u, v = self.propagate(self.memories(users), self.entity(self.item_entity[items])[:, None])  # (B, 1, d)
        return (u * v).sum(-1)[:, 0]

    def score_all(self, users: LongTensor) -> FloatTensor:
        chunks = item_chunks(self.num_items, self.hops * self.memory_heads.shape[-1], len(users), users.device)
        memories, parts = self.memories(users), []
        for c in chunks:
            u, v = self.propagate(memories, self.entity(self.item_entity[c])[None])  # (B, n, d)
            parts.append((u * v).sum(-1))
        return torch.cat(parts, dim=1)  # (B, num_items)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """RippleNet's memory attention logit ``v^T R_r h`` of each hop triple for the candidate v, averaged (it
        depends on the candidate, not on the user)."""
        heads, relations, _, valid = paths.hop_triples()
        v = self.entity(self.item_entity[paths.target])  # (P, d)
        r = self.relation(relations.clamp_min(0)).unflatten(-1, (self.dim, self.dim))  # (P, 3, d, d)
        h = self.entity(heads.clamp_min(0))  # (P, 3, d)
        logits = torch.einsum("pd,pjde,pje->pj", v, r, h)
        return hop_mean(logits, valid)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        items = torch.stack([batch.pos_items, batch.neg_items], dim=1)  # (B, 2)
        v0 = self.entity(self.item_entity[items])  # (B, 2, d)
        memories = self.memories(batch.users)
        u, v = self.propagate(memories, v0)
        scores = (u * v).sum(-1)  # (B, 2)
        trh = (memories.t * memories.rh).sum(-1)  # (B, H, M) t^T R h
        per_hop = (torch.sigmoid(trh) * memories.mask).sum((0, 2)) / memories.mask.sum((0, 2)).clamp_min(1)  # (H,)
        kge = per_hop.sum()
        r = self.relation(self.memory_relations[batch.users])
        reg = kgnn.l2_penalty(memories.h.flatten(1), memories.t.flatten(1), r.flatten(1), v0.flatten(1))
        return kgnn.bce_loss(scores[:, 0], scores[:, 1]) - self.kge_weight * kge + self.l2 * reg
