"""DistMult: a bilinear score with a diagonal relation matrix.

Yang, Yih, He, Gao and Deng, "Embedding Entities and Relations for Learning and Inference in Knowledge
Bases", ICLR 2015::

    f(h, r, t) = h^T diag(r) t = sum_i h_i r_i t_i

Symmetric in ``h`` and ``t``. Trained with binary cross-entropy on logits (softplus; label 1 for the true
triple, 0 for its corrupted copy) plus ``l2`` times the L2 penalty on the embeddings of the batch.
"""

from __future__ import annotations

from torch import nn

from models.base import KGEModel, TripleBatch
from models.nn import bce_loss, distmult_score, l2_penalty
from models.typing import FloatTensor, LongTensor


class DistMult(KGEModel):
    """DistMult, ``<h, r, t>``."""

    def __init__(self, *, num_entities: int, num_relations: int, embedding_dim: int = 64, l2: float = 1e-2) -> None:
        super().__init__(num_entities=num_entities, num_relations=num_relations)
        self.l2 = l2
        self.entity_emb = nn.Embedding(num_entities, embedding_dim)
        self.relation_emb = nn.Embedding(num_relations, embedding_dim)
        nn.init.xavier_uniform_(self.entity_emb.weight)
        nn.init.xavier_uniform_(self.relation_emb.weight)

    def score_hrt(self, h: LongTensor, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``sum_i h_i r_i t_i``. h, r, t: shape (B,) -> (B,)."""
        return distmult_score(self.entity_emb(h), self.relation_emb(r), self.entity_emb(t))

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        """``(h * r) @ E^T``. h, r: shape (B,) -> (B, num_entities)."""
        return (self.entity_emb(h) * self.relation_emb(r)) @ self.entity_emb.weight.T

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``(r * t) @ E^T``. r, t: shape (B,) -> (B, num_entities)."""
        return (self.relation_emb(r) * self.entity_emb(t)) @ self.entity_emb.weight.T

    def loss(self, batch: TripleBatch) -> FloatTensor:
        """BCE of the true and corrupted triples' logits plus ``l2`` times the L2 penalty."""
        h, t = self.entity_emb(batch.heads), self.entity_emb(batch.tails)  # (B, d)
        neg_h, neg_t = self.entity_emb(batch.neg_heads), self.entity_emb(batch.neg_tails)  # (B, d)
        r = self.relation_emb(batch.relations)  # (B, d)
        pos, neg = distmult_score(h, r, t), distmult_score(neg_h, r, neg_t)  # (B,)
        return bce_loss(pos, neg) + self.l2 * l2_penalty(h, r, t, neg_h, neg_t)
