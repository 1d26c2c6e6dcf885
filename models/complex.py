"""ComplEx: DistMult with complex embeddings, so that asymmetric relations can be scored.

Trouillon, Welbl, Riedel, Gaussier and Bouchard, "Complex Embeddings for Simple Link Prediction",
ICML 2016::

    f(h, r, t) = Re(<h, r, conj(t)>) = Re(sum_i h_i r_i conj(t_i)),   h, r, t in C^d

Each embedding is stored as one real vector of size 2d, the real parts first and the imaginary parts
after (the layout of :func:`models.nn.complex_score`). Trained with binary cross-entropy on logits
(softplus) plus ``l2`` times the L2 penalty on the embeddings of the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from models.base import KGEModel, TripleBatch
from models.nn import bce_loss, complex_score, l2_penalty
from models.typing import FloatTensor, LongTensor


def _mul(a: FloatTensor, b: FloatTensor) -> FloatTensor:
    """The complex product ``a * b``, both in the (real | imaginary) layout. shape (..., 2d)."""
    a_re, a_im = a.chunk(2, dim=-1)
    b_re, b_im = b.chunk(2, dim=-1)
    return torch.cat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], dim=-1)


def _conj(a: FloatTensor) -> FloatTensor:
    """The complex conjugate, in the (real | imaginary) layout. shape (..., 2d)."""
    a_re, a_im = a.chunk(2, dim=-1)
    return torch.cat([a_re, -a_im], dim=-1)


class ComplEx(KGEModel):
    """ComplEx, ``Re(<h, r, conj(t)>)``; ``embedding_dim`` is the complex dimension d."""

    def __init__(self, *, num_entities: int, num_relations: int, embedding_dim: int = 64, l2: float = 1e-2) -> None:
        super().__init__(num_entities=num_entities, num_relations=num_relations)
        self.l2 = l2
        self.entity_emb = nn.Embedding(num_entities, 2 * embedding_dim)
        self.relation_emb = nn.Embedding(num_relations, 2 * embedding_dim)
        nn.init.xavier_uniform_(self.entity_emb.weight)
        nn.init.xavier_uniform_(self.relation_emb.weight)

    def score_hrt(self, h: LongTensor, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``Re(<h, r, conj(t)>)``. h, r, t: shape (B,) -> (B,)."""
        return complex_score(self.entity_emb(h), self.relation_emb(r), self.entity_emb(t))

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        """``Re(<h r, conj(e)>) = [Re(h r) | Im(h r)] . e`` for every entity e. h, r: shape (B,) -> (B, N)."""
        query = _mul(self.entity_emb(h), self.relation_emb(r))  # (B, 2d)
        return query @ self.entity_emb.weight.T

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``Re(<e, r conj(t)>) = [Re(r conj t) | -Im(r conj t)] . e`` for every e. r, t: shape (B,) -> (B, N)."""
        query = _conj(_mul(self.relation_emb(r), _conj(self.entity_emb(t))))  # (B, 2d)
        return query @ self.entity_emb.weight.T

    def loss(self, batch: TripleBatch) -> FloatTensor:
        """BCE of the true and corrupted triples' logits plus ``l2`` times the L2 penalty."""
        h, t = self.entity_emb(batch.heads), self.entity_emb(batch.tails)  # (B, 2d)
        neg_h, neg_t = self.entity_emb(batch.neg_heads), self.entity_emb(batch.neg_tails)  # (B, 2d)
        r = self.relation_emb(batch.relations)  # (B, 2d)
        pos, neg = complex_score(h, r, t), complex_score(neg_h, r, neg_t)  # (B,)
        return bce_loss(pos, neg) + self.l2 * l2_penalty(h, r, t, neg_h, neg_t)
