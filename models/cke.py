"""CKE: collaborative filtering with a TransR structural embedding of the items' KG entities, trained jointly.

Zhang, Yuan, Lian, Xie, Ma, "Collaborative Knowledge Base Embedding for Recommender Systems", KDD 2016.
The item vector is its CF offset plus its entity's structural vector, ``e_i = eta_i + v_{entity(i)}``, and
``s(u, i) = <p_u, e_i>``. Each training step adds, to the CF loss of an interaction batch, ``kg_weight`` times
a TransR loss on as many KG triples (tails corrupted): ``softplus(d(h, r, t) - d(h, r, t'))`` with ``d`` the
squared distance of the L2-normalised projections (:func:`models.nn.transr_distance`; the paper's Bayesian
TransR written as a pairwise loss, as RecBole's CKE does). L2 terms: ``l2`` on ``p_u, e_i, e_j``, ``kg_l2`` on
the KG vectors of the triple batch.

The CF loss (``cf_loss``) is the paper's pairwise BPR loss (``"bpr"``) or a sampled softmax (``"softmax"``,
:func:`models.nn.softmax_loss`) of each positive against the N negatives the trainer draws for it
(``train.negatives``). The defaults (models/defaults.toml) are the softmax over 64 negatives, with patience 10:
it ranks better than BPR over one negative on both benchmark sets, and than BPR over 64 on kgcn-music (README,
"Models II"); its validation recall rests on a popularity plateau for a few epochs before it personalises, which
patience 5 can mistake for convergence. ``cf_loss="bpr"`` with ``train.negatives=1`` is the paper's (and RecBole's) CKE.

Only the structural part of CKE is built (no textual or visual autoencoders: the KG has no text or images).
A cold item's CF offset never trains, but its entity vector does.
"""

from __future__ import annotations

from typing import Any, Self

from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel, TripleBatch
from models.data import RecData
from models.graph import KnowledgeGraph
from models.paths import PathSet, hop_mean
from models.typing import FloatTensor, LongTensor


class CKE(RecModel):
    graph_phases = ("cf+kg",)
    precisions = ("fp32", "bf16")
    kg_phase = "joint"
    multi_negative = True

    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        embedding_dim: int = 64,
        kg_embedding_dim: int = 64,
        kg_weight: float = 1.0,
        l2: float = 1e-5,
        kg_l2: float = 1e-5,
        cf_loss: str = "bpr",
        temperature: float = 1.0,
    ) -> None:
        super().__init__(num_users=num_users, num_items=kg.num_items)
        kgnn.check_ranking_loss(cf_loss, temperature)
        self.cf_loss, self.temperature = cf_loss, temperature
        self.dim, self.kg_dim = embedding_dim, kg_embedding_dim
        self.kg_weight, self.l2, self.kg_l2 = kg_weight, l2, kg_l2
        self.kg = kg  # kept on the CPU for the triple sampler (not a buffer: .to(device) leaves it)
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(kg.num_items, embedding_dim)
        self.entity = nn.Embedding(kg.num_entities, embedding_dim)
        self.relation = nn.Embedding(kg.num_relations, kg_embedding_dim)
        self.relation_matrix = nn.Embedding(kg.num_relations, embedding_dim * kg_embedding_dim)  # M_r, flattened
        for table in (self.user, self.item, self.entity, self.relation, self.relation_matrix):
            nn.init.xavier_uniform_(table.weight)
        self.register_buffer("item_entity", kg.item_entity.clone())

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        return cls(num_users=data.num_users, kg=data.kg, **hyper)

    def item_vectors(self, items: LongTensor) -> FloatTensor:
        """``eta_i + v_{entity(i)}``. items: (B,) -> (B, d)."""
        return self.item(items) + self.entity(self.item_entity[items])

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        return (self.user(users) * self.item_vectors(items)).sum(-1)

    def score_all(self, users: LongTensor) -> FloatTensor:
        every = self.item.weight + self.entity.weight[self.item_entity]  # (num_items, d)
        return self.user(users) @ every.T

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        u, i, j = self.user(batch.users), self.item_vectors(batch.pos_items), self.item_vectors(batch.neg_items)
        cf = kgnn.ranking_loss(self.cf_loss, (u * i).sum(-1), kgnn.negative_scores(u, j), self.temperature)
        return cf + self.l2 * kgnn.l2_penalty(u, i, j)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """The mean TransR plausibility (negative distance) of each path's hops (the same for every user)."""
        heads, relations, tails, valid = paths.hop_triples()
        r_ids = relations.clamp_min(0)
        m = self.relation_matrix(r_ids).unflatten(-1, (self.dim, self.kg_dim))
        dist = kgnn.transr_distance(self.entity(heads.clamp_min(0)), self.relation(r_ids),
                                    self.entity(tails.clamp_min(0)), m)
        return hop_mean(-dist, valid)

    def kg_triples(self) -> KnowledgeGraph:
        return self.kg

    def kg_loss(self, batch: TripleBatch) -> FloatTensor:
        h, t, t_neg = self.entity(batch.heads), self.entity(batch.tails), self.entity(batch.neg_tails)
        r = self.relation(batch.relations)
        m = self.relation_matrix(batch.relations).unflatten(-1, (self.dim, self.kg_dim))
        pos, neg = kgnn.transr_pair_distance(h, r, t, t_neg, m)
        loss = kgnn.bpr_loss(-pos, -neg) + self.kg_l2 * kgnn.l2_penalty(h, r, t, t_neg)
        return self.kg_weight * loss
