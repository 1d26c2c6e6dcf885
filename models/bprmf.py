"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking.

Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009. ``s(u, i) = <p_u, q_i>``; loss ``-log sigmoid(s(u, i) - s(u, j))`` for a
positive i and a sampled negative j, plus ``l2 * (||p_u||^2 + ||q_i||^2 + ||q_j||^2) / 2``.
An item with no training interaction keeps its random initial vector: BPR-MF cannot rank unseen items.
``cf_loss="softmax"`` swaps the BPR loss for a sampled softmax over ``train.negatives`` negatives per positive
(:func:`models.nn.softmax_loss`); the default stays BPR over one negative, the baseline the KG models are read
against.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel
from models.paths import PathSet
from models.typing import FloatTensor, LongTensor


class BPRMF(RecModel):
    graph_phases = ("cf",)
    precisions = ("fp32", "bf16")
    multi_negative = True

    def __init__(self, *, num_users: int, num_items: int, embedding_dim: int = 64, l2: float = 1e-5,
                 cf_loss: str = "bpr", temperature: float = 1.0) -> None:
        super().__init__(num_users=num_users, num_items=num_items)
        kgnn.check_ranking_loss(cf_loss, temperature)
        self.l2, self.cf_loss, self.temperature = l2, cf_loss, temperature
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(num_items, embedding_dim)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        return (self.user(users) * self.item(items)).sum(-1)  # (B,)

    def score_all(self, users: LongTensor) -> FloatTensor:
        return self.user(users) @ self.item.weight.T  # (B, num_items)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """BPR-MF knows no KG: a path counts as much as its history item's vector resembles the candidate's."""
        return F.cosine_similarity(self.item(paths.item), self.item(paths.target), dim=-1)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        u, i, j = self.user(batch.users), self.item(batch.pos_items), self.item(batch.neg_items)  # (B, d) each
        pos, neg = (u * i).sum(-1), kgnn.negative_scores(u, j)
        return kgnn.ranking_loss(self.cf_loss, pos, neg, self.temperature) + self.l2 * kgnn.l2_penalty(u, i, j)
