"""PathRec: explainable path reasoning. KG paths from the user's history items to a candidate are both a ranking
signal and the explanation.

After the path-based recommenders of the seed article (``000_*``, "Path-based reasoning"; KPRN, Wang et al., AAAI
2019, scores each path with an LSTM, which no vectorised full ranking can afford), the path scorer here factorises
over hops so that the sum over every walk can be computed by sparse propagation:

- K relation-preference profiles (say, "same artist" vs "same genre"): under profile k, walking ``x -r-> y``
  (either direction of a KG triple) weighs ``w_k(x, r, y) = sigmoid(<v_k, e_r>) * sigmoid(<a, e_y> + b) / deg(x)``:
  how much the profile cares about relation ``r`` (relation embeddings), how relevant the entity reached is (entity
  embeddings), and a random-walk normalisation so hubs do not dominate;
- a user mixes the profiles, ``pi_u = softmax(P p_u)``, and a path of L hops from a history item scores
  ``gamma_L / |H_u| * sum_k pi_uk prod_hops w_k`` (``gamma_L = softplus(.)`` per length, L = 1..3);
- the path signal of candidate c sums that over every walk of 1-3 hops from the user's history items to c,
  ``P_u(c) = sum_k pi_uk sum_L gamma_L (x_u T_k^L)[c]`` with ``x_u`` the history indicator over ``|H_u|``: T_k does
  not depend on the user, so a batch costs 3 K sparse products (:func:`models.nn.edge_matmul`), for all items at once;
- ``s(u, c) = <p_u, q_c> + beta * log(eps + P_u(c))``: a CF term plus the path evidence, BPR loss plus ``l2``.

A training positive is part of the user's history: its own walks back to itself (``c -> attribute -> c``) are
subtracted (linear in ``x_u``), so the model cannot learn that training items are reachable from themselves.
``path_scores`` gives a simple path exactly its term of ``P_u`` (in logs), so the explanation shows the paths
that carried the score; walks that revisit an entity count in ``P_u`` but are never shown.
"""

from __future__ import annotations

from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel
from models.data import RecData
from models.graph import KnowledgeGraph, csr_pointer, expand_ranges
from models.paths import MAX_LENGTH, PathSet
from models.typing import FloatTensor, LongTensor

EPS = 1e-6


class PathRec(RecModel):
    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        train_users: LongTensor,
        train_items: LongTensor,
        embedding_dim: int = 64,
        profiles: int = 2,
        l2: float = 1e-5,
    ) -> None:
        super().__init__(num_users=num_users, num_items=kg.num_items)
        if profiles < 1:
            raise ValueError(f"profiles must be >= 1, got {profiles}")
        self.l2, self.num_entities, self.profiles = l2, kg.num_entities, profiles
        self.user = nn.Embedding(num_users, embedding_dim)
        self.item = nn.Embedding(kg.num_items, embedding_dim)
        self.entity = nn.Embedding(kg.num_entities, embedding_dim)
        self.relation = nn.Embedding(kg.num_relations, embedding_dim)
        self.profile_relation = nn.Linear(embedding_dim, profiles, bias=False)  # v_k
        self.user_profile = nn.Linear(embedding_dim, profiles, bias=False)  # P
        self.entity_gate = nn.Linear(embedding_dim, 1)  # a, b
        for table in (self.user, self.item, self.entity, self.relation):
            nn.init.xavier_normal_(table.weight)
        self.length_weight = nn.Parameter(torch.zeros(MAX_LENGTH))  # gamma_L = softplus
        self.path_weight = nn.Parameter(torch.tensor(0.1))  # beta
        edge_index, edge_type = kg.undirected()
        degree = torch.bincount(edge_index[0], minlength=kg.num_entities).clamp_min(1)
        self.register_buffer("src", edge_index[0])
        self.register_buffer("dst", edge_index[1])
        self.register_buffer("edge_relation", edge_type)
        self.register_buffer("inv_degree", 1.0 / degree.float())
        self.register_buffer("item_entity", kg.item_entity.clone())
        order = torch.argsort(train_users, stable=True)
        self.register_buffer("history_items", train_items[order])
        self.register_buffer("history_pointer", csr_pointer(train_users, num_users))
        self._edges: kgnn.EdgeIndex | None = None

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        return cls(num_users=data.num_users, kg=data.kg, train_users=data.train.users, train_items=data.train.items,
                   **hyper)

    def history_size(self, users: LongTensor) -> FloatTensor:
        return (self.history_pointer[users + 1] - self.history_pointer[users]).clamp_min(1).float()

    def start(self, users: LongTensor) -> FloatTensor:
        """``x_u``: each user's history entities, weight ``1 / |H_u|``, one column per user (entities along the
        rows, as the sparse product wants). users: (B,) -> (num_entities, B)."""
        pointer = self.history_pointer
        column, _, at = expand_ranges(pointer[users], pointer[users + 1] - pointer[users])
        entity = self.item_entity[self.history_items[at]]
        x = torch.zeros(self.num_entities, len(users), device=users.device)
        return x.index_put_((entity, column), 1.0 / self.history_size(users)[column], accumulate=True)

    def edges(self) -> kgnn.EdgeIndex:
        """The walk's edge pattern on the buffers' device (built once per device)."""
        if self._edges is None or self._edges.cols.device != self.src.device:
            self._edges = kgnn.EdgeIndex(self.src, self.dst, self.num_entities)
        return self._edges

    def profile_mix(self, u: FloatTensor) -> FloatTensor:
        """``pi_u``. u: (B, d) -> (B, K)."""
        return torch.softmax(self.user_profile(u), dim=-1)

    def edge_weights(self) -> FloatTensor:
        """``w_k`` of every directed edge under every profile: (K, 2E)."""
        relation = torch.sigmoid(self.profile_relation(self.relation.weight)).T  # (K, R)
        gate = torch.sigmoid(self.entity_gate(self.entity.weight)).squeeze(-1)  # (N,)
        return relation[:, self.edge_relation] * (gate[self.dst] * self.inv_degree[self.src])

    def walk(self, x: FloatTensor, u: FloatTensor, at: LongTensor) -> FloatTensor:
        """``sum_k pi_uk sum_L gamma_L x T_k^L``, the walk mass of 1-3 hops, read at the entities ``at`` only.

        x: (N, C), the start mass of C walks (one user's each); u: (C, d) their users' vectors; ``at``: (M,) the
        entities read in every walk, or (J, C) the J entities read in each -> (C, M) or (C, J). Only the read rows
        are weighed and mixed: the whole (N, C) state is touched by the sparse products alone.
        """
        weights, mix = self.edge_weights(), self.profile_mix(u)  # (K, 2E), (C, K)
        gamma = F.softplus(self.length_weight)
        total = x.new_zeros(at.shape[0], x.shape[1])  # (M or J, C)
        for k in range(self.profiles):  # over profiles (K) and hops (3), never over nodes
            state, mass = x, torch.zeros_like(total)
            for length in range(MAX_LENGTH):
                state = kgnn.edge_matmul(weights[k], self.edges(), state)
                mass = mass + gamma[length] * (state.index_select(0, at) if at.dim() == 1 else state.gather(0, at))
            total = total + mass * mix[:, k]
        return total.T

    def path_signal(self, users: LongTensor, u: FloatTensor) -> FloatTensor:
        """``P_u`` at every item. users: (B,) -> (B, num_items)."""
        return self.walk(self.start(users), u, self.item_entity)

    def combine(self, cf: FloatTensor, paths: FloatTensor) -> FloatTensor:
        return cf + self.path_weight * torch.log(EPS + paths)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        u = self.user(users)
        signal = self.path_signal(users, u).gather(1, items[:, None]).squeeze(1)
        return self.combine((u * self.item(items)).sum(-1), signal)

    def score_all(self, users: LongTensor) -> FloatTensor:
        u = self.user(users)
        return self.combine(u @ self.item.weight.T, self.path_signal(users, u))

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        users, pos, neg = batch.users, batch.pos_items, batch.neg_items
        u = self.user(users)
        columns = torch.arange(len(users), device=users.device)
        own = torch.zeros(self.num_entities, len(users), device=users.device)
        own[self.item_entity[pos], columns] = 1.0 / self.history_size(users)  # the positive's own share of x_u
        read = torch.stack([self.item_entity[pos], self.item_entity[neg]])  # (2, B): each walk's pos and neg
        mass = self.walk(torch.cat([self.start(users), own], dim=1), torch.cat([u, u]), read.repeat(1, 2))
        history, returning = mass[: len(users)], mass[len(users) :]  # (B, 2) each
        pos_signal, neg_signal = (history - returning).clamp_min(0).unbind(1)  # neg: the same history
        i, j = self.item(pos), self.item(neg)
        pos_score = self.combine((u * i).sum(-1), pos_signal)
        neg_score = self.combine((u * j).sum(-1), neg_signal)
        return kgnn.bpr_loss(pos_score, neg_score) + self.l2 * kgnn.l2_penalty(u, i, j)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """``log(gamma_L / |H_u| * sum_k pi_uk prod_hops w_k)``: the path's own term of ``P_u`` (a log: it is tiny),
        with its own user's profile mix and history size. users: (P,)."""
        distinct, row = torch.unique(users, return_inverse=True)  # one mix per user, not per path
        mix = self.profile_mix(self.user(distinct))[row]  # (P, K)
        relation = torch.sigmoid(self.profile_relation(self.relation.weight))  # (R, K)
        gate = torch.sigmoid(self.entity_gate(self.entity.weight)).squeeze(-1)  # (N,)
        a, b = paths.entities[:, :-1].clamp_min(0), paths.entities[:, 1:].clamp_min(0)
        _, relations, _, valid = paths.hop_triples()
        hop = relation[relations.clamp_min(0)] * (gate[b] * self.inv_degree[a])[..., None]  # (P, 3, K)
        hop = torch.where(valid[..., None], hop, torch.ones_like(hop))
        per_path = (hop.prod(dim=1) * mix).sum(-1)  # (P,)
        gamma = F.softplus(self.length_weight)[paths.length - 1]
        return per_path.log() + gamma.log() - self.history_size(users).log()
