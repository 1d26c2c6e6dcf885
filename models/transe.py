"""TransE: a relation is a translation in entity space.

Bordes, Usunier, Garcia-Durán, Weston and Yakhnenko, "Translating Embeddings for Modeling
Multi-relational Data", NeurIPS 2013::

    f(h, r, t) = -||h + r - t||_p

trained with the margin ranking loss ``[margin - f(h, r, t) + f(h', r, t')]_+`` against one corrupted
triple per true triple. As in the paper, embeddings start uniform in ``±6/sqrt(d)``, relation vectors are
normalised once, and entity vectors are renormalised to unit L2 norm at the start of every epoch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.base import KGEModel, TripleBatch
from models.nn import l2_penalty, margin_loss, transe_score
from models.typing import FloatTensor, LongTensor


class TransE(KGEModel):
    """TransE, ``h + r ≈ t``; ``p`` is the norm of the distance, ``l2`` the weight of an optional L2 term."""

    def __init__(self, *, num_entities: int, num_relations: int, embedding_dim: int = 64, p: int = 2,
                 margin: float = 1.0, l2: float = 0.0) -> None:
        super().__init__(num_entities=num_entities, num_relations=num_relations)
        self.p, self.margin, self.l2 = p, margin, l2
        self.entity_emb = nn.Embedding(num_entities, embedding_dim)
        self.relation_emb = nn.Embedding(num_relations, embedding_dim)
        bound = 6 / math.sqrt(embedding_dim)
        nn.init.uniform_(self.entity_emb.weight, -bound, bound)
        nn.init.uniform_(self.relation_emb.weight, -bound, bound)
        with torch.no_grad():
            self.relation_emb.weight.copy_(F.normalize(self.relation_emb.weight, dim=-1))
        self.normalize_entities()

    @torch.no_grad()
    def normalize_entities(self) -> None:
        """Rescale every entity vector to unit L2 norm, in place (the paper's constraint ``||e||_2 = 1``)."""
        self.entity_emb.weight.copy_(F.normalize(self.entity_emb.weight, dim=-1))

    def on_epoch_start(self, generator: torch.Generator) -> None:
        """Renormalise the entities before each epoch, as in the paper's training loop."""
        self.normalize_entities()

    def score_hrt(self, h: LongTensor, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``-||h + r - t||_p``. h, r, t: shape (B,) -> (B,)."""
        return transe_score(self.entity_emb(h), self.relation_emb(r), self.entity_emb(t), self.p)

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        """``-||(h + r) - e||_p`` for every entity e. h, r: shape (B,) -> (B, num_entities)."""
        query = self.entity_emb(h) + self.relation_emb(r)  # (B, d)
        return -torch.cdist(query, self.entity_emb.weight, p=self.p, compute_mode="donot_use_mm_for_euclid_dist")

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        """``-||e - (t - r)||_p`` for every entity e. r, t: shape (B,) -> (B, num_entities)."""
        query = self.entity_emb(t) - self.relation_emb(r)  # (B, d)
        return -torch.cdist(query, self.entity_emb.weight, p=self.p, compute_mode="donot_use_mm_for_euclid_dist")

    def loss(self, batch: TripleBatch) -> FloatTensor:
        """Margin ranking loss of each triple against its corrupted copy, plus ``l2`` times the L2 penalty."""
        h, t = self.entity_emb(batch.heads), self.entity_emb(batch.tails)  # (B, d)
        neg_h, neg_t = self.entity_emb(batch.neg_heads), self.entity_emb(batch.neg_tails)  # (B, d)
        r = self.relation_emb(batch.relations)  # (B, d)
        pos, neg = transe_score(h, r, t, self.p), transe_score(neg_h, r, neg_t, self.p)  # (B,)
        return margin_loss(pos, neg, self.margin) + self.l2 * l2_penalty(h, r, t, neg_h, neg_t)
