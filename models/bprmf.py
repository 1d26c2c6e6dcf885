"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking.

Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009. ``s(u, i) = <p_u, q_i>``; loss ``-log sigmoid(s(u, i) - s(u, j))`` for a
positive i and a sampled negative j, plus ``l2 * (||p_u||^2 + ||q_i||^2 + ||q_j||^2) / 2``.
An item with no training interaction keeps its random initial vector: BPR-MF cannot rank unseen items.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel
from models.paths import PathSet
from models.typing import FloatTensor, LongTensor


class BPRMF(RecModel):
    def __init__(self, *, num_users: int, num_items: int, embedding_dim: int = 64, l2: float = 1e-5) -> None:
        super().__init__(num_users=num_users, num_items=num_items)
        self.l2 = l2
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(num_items, embedding_dim)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        return (self.user(users) * self.item(items)).sum(-1)  # (B,)

    def score_all(self, users: LongTensor) -> FloatTensor:
        return self.user(users) @ self.item.weight.T  # (B, num_items)

    def path_scores(self, user: int, paths: PathSet) -> FloatTensor:
        """BPR-MF knows no KG: a path counts as much as its history item's vector resembles the candidate's."""
        return F.cosine_similarity(self.item(paths.item), self.item(paths.target), dim=-1)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        u, i, j = self.user(batch.users), self.item(batch.pos_items), self.item(batch.neg_items)  # (B, d) each
        pos, neg = (u * i).sum(-1), (u * j).sum(-1)
        return kgnn.bpr_loss(pos, neg) + self.l2 * kgnn.l2_penalty(u, i, j)
