"""KGNN-LS: KGCN's user-specific graph network plus label-smoothness regularisation.

Wang, Zhang, Zhang, Leskovec, Zhao, Li, Wang, "Knowledge-aware Graph Neural Networks with Label
Smoothness Regularization for Recommender Systems", KDD 2019. The scorer is :class:`~models.kgcn.KGCN`
(the authors' code shares it). The extra term: with the user-specific edge weights ``A_u`` (the same
softmax of ``pi(u, r)`` over each node's sampled neighbours), labels propagate over the receptive field
for H iterations, ``l <- A_u l`` with labelled items reset to their label after each step. The target
item's own label is held out (leave-one-out: it and every other occurrence of it start at 0.5), and the
loss is ``ls_weight * BCE(l_v, y_uv)``. Labels: 1 for the user's training items, 0.5 for every other
entity (unlabelled); y is 1 for the positive and 0 for the sampled negative of each pair.
"""

from __future__ import annotations

from typing import Any, Self

import torch

from models import nn as kgnn
from models.base import InteractionBatch
from models.data import RecData
from models.graph import KnowledgeGraph
from models.kgcn import KGCN
from models.sampling import PairSet, in_sorted
from models.typing import FloatTensor, LongTensor

UNLABELLED = 0.5


class KGNNLS(KGCN):
    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        train_users: LongTensor,
        train_items: LongTensor,
        ls_weight: float = 0.5,
        **kgcn: Any,
    ) -> None:
        """``train_users``, ``train_items``: shape (I,), the training positives (the known labels)."""
        super().__init__(num_users=num_users, kg=kg, **kgcn)
        self.ls_weight = ls_weight
        labels = PairSet(train_users, kg.item_entity[train_items], kg.num_entities)
        self.register_buffer("label_keys", labels.keys)  # sorted user * num_entities + entity of every label 1
        self.num_entities = kg.num_entities

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        return cls(num_users=data.num_users, kg=data.kg, train_users=data.train.users,
                   train_items=data.train.items, **hyper)

    def propagated_labels(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        """Leave-one-out label of each (user, item) pair after H propagation steps. shape (B,) -> (B,)."""
        u = self.user(users)  # (B, d)
        entities, relations, masks = self.receptive_field(items[:, None])
        weights = self.neighbour_weights(u, relations, masks)  # per hop (B, K^h, K)
        target = entities[0]  # (B, 1)
        labels, fixed = [], []
        for hop_entities in entities:  # (B, K^h)
            held_out = hop_entities == target
            known = in_sorted(self.label_keys, users[:, None] * self.num_entities + hop_entities) & ~held_out
            labels.append(torch.where(known, 1.0, UNLABELLED).to(u.dtype))
            fixed.append(known)
        for i in range(self.hops):
            labels = [self._step(labels[h], labels[h + 1], weights[h], fixed[h]) for h in range(self.hops - i)]
        return labels[0][:, 0]

    def _step(self, own: FloatTensor, children: FloatTensor, weights: FloatTensor, fixed: torch.Tensor) -> FloatTensor:
        """One propagation step. own, fixed: (B, M); children: (B, M K); weights: (B, M, K) -> (B, M)."""
        mixed = (weights * children.reshape(weights.shape)).sum(-1)  # (B, M)
        has_neighbour = weights.sum(-1) > 0
        return torch.where(fixed | ~has_neighbour, own, mixed)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        ls = kgnn.bce_of_probabilities(self.propagated_labels(batch.users, batch.pos_items),
                                       self.propagated_labels(batch.users, batch.neg_items))
        return super().loss(batch) + self.ls_weight * ls
