"""TransR: entities are projected into a relation-specific space, where the relation is a translation.

Lin, Liu, Sun, Liu and Zhu, "Learning Entity and Relation Embeddings for Knowledge Graph Completion",
AAAI 2015::

    h_r = h M_r,  t_r = t M_r,  f(h, r, t) = -||h_r + r - t_r||_p

with ``M_r`` of shape (entity_dim, relation_dim) (stored flattened, one row of ``relation_matrix`` per
relation), trained with the margin ranking loss. The paper's constraints
``||h||, ||r||, ||t||, ||h M_r||, ||t M_r|| <= 1`` are enforced by clamping: in the forward pass
each of these vectors whose L2 norm exceeds 1 is rescaled onto the unit sphere (as PyKEEN clamps the
projections), so the parameters are never edited in place and no hook is needed. Unlike the paper the
distance is not squared (the same distance as TransE). ``M_r`` starts as the identity, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import KGEModel, TripleBatch
from models.nn import l2_penalty, margin_loss, transe_score, transr_project
from models.typing import FloatTensor, LongTensor


def _clamp_norm(x: FloatTensor) -> FloatTensor:
    """Rescale the vectors longer than 1 (L2) onto the unit sphere, differentiably. x: shape (..., d)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1.0)


class TransR(KGEModel):
    """TransR, ``h M_r + r ≈ t M_r``; ``l2`` weighs an optional L2 term on the projected vectors."""

    def __init__(self, *, num_entities: int, num_relations: int, entity_dim: int = 64, relation_dim: int = 64,
                 p: int = 2, margin: float = 1.0, l2: float = 0.0) -> None:
        super().__init__(num_entities=num_entities, num_relations=num_relations)
        self.entity_dim, self.relation_dim = entity_dim, relation_dim
        self.p, self.margin, self.l2 = p, margin, l2
        self.entity_emb = nn.Embedding(num_entities, entity_dim)
        self.relation_emb = nn.Embedding(num_relations, relation_dim)
        nn.init.xavier_uniform_(self.entity_emb.weight)
        nn.init.xavier_uniform_(self.relation_emb.weight)
        # M_r flattened, one row per relation: on a busy 2-core CPU, indexing a (R, d_e, d_r) parameter and
        # its scatter backward measured ~100x slower than this embedding lookup.
        self.relation_matrix = nn.Embedding(num_relations, entity_dim * relation_dim)
        with torch.no_grad():
            self.relation_matrix.weight.copy_(torch.eye(entity_dim, relation_dim).flatten().expand(num_relations, -1))

    def project(self, entities: LongTensor, relations: LongTensor) -> FloatTensor:
        """``e M_r``, clamped: entities[b] in the space of relations[b]. shape (B,), (B,) -> (B, relation_dim)."""
        e = _clamp_norm(self.entity_emb(entities))  # (B, d_e)
        return _clamp_norm(transr_project(e, self._matrices(relations)))  # (B, d_r)

    def _matrices(self, relations: LongTensor) -> FloatTensor:
        """``M_r`` of each relation. relations: shape (B,) -> (B, entity_dim, relation_dim)."""
        return self.relation_matrix(relations).unflatten(-1, (self.entity_dim, self.relation_dim))

    def relation(self, relations: LongTensor) -> FloatTensor:
        """The clamped relation vectors. relations: shape (B,) -> (B, relation_dim)."""
        return _clamp_norm(self.relation_emb(relations))

    def project_all(self, relations: LongTensor) -> FloatTensor:
        """Every entity, clamped, in the space of each relation. relations: shape (B,) -> (B, num_entities, d_r)."""
        # One batched matmul of the whole table: transr_project would broadcast M_r to one copy per entity.
        entities = _clamp_norm(self.entity_emb.weight)  # (N, d_e)
        return _clamp_norm(torch.matmul(entities, self._matrices(relations)))  # (B, N, d_r)

    def score_hrt(self, h: LongTensor, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``-||h M_r + r - t M_r||_p``. h, r, t: shape (B,) -> (B,)."""
        return transe_score(self.project(h, r), self.relation(r), self.project(t, r), self.p)

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        """Scores of every entity as the tail. h, r: shape (B,) -> (B, num_entities)."""
        h_r, rel = self.project(h, r).unsqueeze(1), self.relation(r).unsqueeze(1)  # (B, 1, d_r)
        return transe_score(h_r, rel, self.project_all(r), self.p)

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        """Scores of every entity as the head. r, t: shape (B,) -> (B, num_entities)."""
        rel, t_r = self.relation(r).unsqueeze(1), self.project(t, r).unsqueeze(1)  # (B, 1, d_r)
        return transe_score(self.project_all(r), rel, t_r, self.p)

    def loss(self, batch: TripleBatch) -> FloatTensor:
        """Margin ranking loss of each triple against its corrupted copy, plus ``l2`` times the L2 penalty."""
        r_ids = batch.relations
        h, t = self.project(batch.heads, r_ids), self.project(batch.tails, r_ids)  # (B, d_r)
        neg_h, neg_t = self.project(batch.neg_heads, r_ids), self.project(batch.neg_tails, r_ids)  # (B, d_r)
        r = self.relation(r_ids)  # (B, d_r)
        pos, neg = transe_score(h, r, t, self.p), transe_score(neg_h, r, neg_t, self.p)  # (B,)
        return margin_loss(pos, neg, self.margin) + self.l2 * l2_penalty(h, r, t, neg_h, neg_t)
