"""KGAT: Knowledge Graph Attention Network.

Wang, He, Cao, Liu, Chua, "KGAT: Knowledge Graph Attention Network for Recommendation", KDD 2019.

- Graph: the collaborative knowledge graph (:mod:`models.ckg`): interactions as ``interact`` triples plus the
  item KG, every triple with its inverse; users and entities share one node table ``e``.
- Embedding layer: TransR, ``g(h, r, t) = ||W_r e_h + e_r - W_r e_t||^2`` over L2-normalised vectors
  (:func:`models.nn.transr_distance`), loss ``softplus(g(h, r, t) - g(h, r, t'))`` with the tail corrupted, plus
  ``l2`` on the vectors; on the item KG's triples (``kg_loss_on="kg"``, as RecBole's KGAT) or on every CKG triple,
  interactions and inverses included (``"ckg"``, as the authors' code). On kgcn-music both reach the same
  Recall@20 (0.313, seed 2026) and "kg" a better NDCG@20 (0.138 vs 0.129) with epochs 2.5x shorter (the CKG has
  4.4x the KG's triples), so "kg" is the default.
- Knowledge-aware attention ``pi(h, r, t) = (W_r e_t)^T tanh(W_r e_h + e_r)``, softmax over each head's edges
  (:func:`models.nn.scatter_softmax`). As in the paper, it is recomputed once per epoch, after training
  (:meth:`on_epoch_end`), and held fixed in between: it weighs messages but gets no gradient.
- Propagation, L layers: ``e_N(h) = sum_t pi(h, r, t) e_t`` (a sparse product over the edge index,
  :func:`models.nn.edge_matmul`),
  then the aggregator: ``bi`` (bi-interaction) ``LeakyReLU(W1 (e_h + e_N)) + LeakyReLU(W2 (e_h * e_N))``, ``gcn``
  ``LeakyReLU(W (e_h + e_N))`` or ``graphsage`` ``LeakyReLU(W [e_h ; e_N])``; message dropout on each layer's
  output, which is then L2-normalised (the authors' code); the final vector concatenates ``e^(0) .. e^(L)``.
- ``s(u, i) = <e*_u, e*_i>``, BPR loss plus ``l2`` on the final vectors of the batch.
- Training alternates a CF phase (BPR over the interactions) and a KG phase (TransR over the CKG triples), as
  the paper's Algorithm and RecBole's ``KGATTrainer`` do.

Choices where the paper is silent, from the authors' code: LeakyReLU slope 0.2; Xavier-uniform initialisation;
the initial attention is computed from the initial embeddings (on first use). In evaluation the propagated vectors are
computed once and reused across user chunks until the model trains again or loads new weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from models import nn as kgnn
from models.base import InteractionBatch, RecModel, TripleBatch
from models.ckg import INTERACT, collaborative_graph
from models.data import RecData
from models.graph import KnowledgeGraph
from models.paths import PathSet, hop_sum
from models.typing import FloatTensor, LongTensor

AGGREGATORS = ("bi", "gcn", "graphsage")
KG_LOSS_ON = ("ckg", "kg")
LEAKY_SLOPE = 0.2


class Aggregator(nn.Module):
    """One propagation layer's aggregator. ego, side: (N, d_in) -> (N, d_out)."""

    def __init__(self, kind: str, dim_in: int, dim_out: int) -> None:
        super().__init__()
        if kind not in AGGREGATORS:
            raise ValueError(f"unknown aggregator {kind!r}; expected one of {AGGREGATORS}")
        self.kind = kind
        self.linear = nn.Linear(2 * dim_in if kind == "graphsage" else dim_in, dim_out)
        self.bi = nn.Linear(dim_in, dim_out) if kind == "bi" else None
        for linear in (self.linear, self.bi):
            if linear is not None:
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)

    def forward(self, ego: FloatTensor, side: FloatTensor) -> FloatTensor:
        if self.kind == "graphsage":
            return F.leaky_relu(self.linear(torch.cat([ego, side], dim=-1)), LEAKY_SLOPE)
        out = F.leaky_relu(self.linear(ego + side), LEAKY_SLOPE)
        if self.bi is not None:
            out = out + F.leaky_relu(self.bi(ego * side), LEAKY_SLOPE)
        return out


class KGAT(RecModel):
    graph_phases = ("cf", "kg")
    precisions = ("fp32",)  # bf16 trailed fp32 by 0.02 validation Recall@20 on an H200 (tests/models/test_cuda.py)
    kg_phase = "alternate"
    explains_with_interactions = True  # its attention runs over the CKG: collaborative hops explain too

    def __init__(
        self,
        *,
        num_users: int,
        kg: KnowledgeGraph,
        train_users: LongTensor,
        train_items: LongTensor,
        embedding_dim: int = 64,
        kg_embedding_dim: int = 64,
        layers: Sequence[int] = (64, 32, 16),
        aggregator: str = "bi",
        dropout: float = 0.1,
        l2: float = 1e-5,
        kg_loss_on: str = "kg",
    ) -> None:
        super().__init__(num_users=num_users, num_items=kg.num_items)
        if not layers or min(layers) < 1:
            raise ValueError(f"layers must be a non-empty list of positive sizes, got {list(layers)}")
        if kg_loss_on not in KG_LOSS_ON:
            raise ValueError(f"kg_loss_on must be one of {KG_LOSS_ON}, got {kg_loss_on!r}")
        self.kg_loss_on = kg_loss_on
        self.ckg = collaborative_graph(kg, train_users, train_items, num_users)
        self.dim, self.kg_dim, self.l2 = embedding_dim, kg_embedding_dim, l2
        self.node = nn.Embedding(self.ckg.num_nodes, embedding_dim)
        self.relation = nn.Embedding(self.ckg.num_relations, kg_embedding_dim)
        self.relation_matrix = nn.Embedding(self.ckg.num_relations, embedding_dim * kg_embedding_dim)  # W_r
        for table in (self.node, self.relation, self.relation_matrix):
            nn.init.xavier_uniform_(table.weight)
        sizes = [embedding_dim, *layers]
        self.layers = nn.ModuleList(Aggregator(aggregator, a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("heads", self.ckg.heads)
        self.register_buffer("tails", self.ckg.tails)
        self.register_buffer("item_node", self.ckg.item_node)
        self.register_buffer("attention", torch.full((self.ckg.num_edges,), math.nan))  # computed on first use
        self._cache: FloatTensor | None = None
        self._attention_known = False  # True once the attention buffer holds computed (or loaded) weights
        self._edges: kgnn.EdgeIndex | None = None
        keys = (self.ckg.relations * self.ckg.num_nodes + self.ckg.heads) * self.ckg.num_nodes + self.ckg.tails
        self._edge_keys, self._edge_order = keys.sort()  # (relation, head, tail) -> edge, for path_scores

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        return cls(num_users=data.num_users, kg=data.kg, train_users=data.train.users, train_items=data.train.items,
                   **hyper)

    def matrices(self, relations: LongTensor) -> FloatTensor:
        """``W_r`` of each relation. relations: (B,) -> (B, d, k)."""
        return self.relation_matrix(relations).unflatten(-1, (self.dim, self.kg_dim))

    def base_vectors(self) -> FloatTensor:
        """``e^(0)`` of every node, what attention and propagation start from: (num_nodes, d). (KGAT-AX fuses
        auxiliary information in here.)"""
        return self.node.weight

    @torch.no_grad()
    def edge_scores(self) -> FloatTensor:
        """``pi(h, r, t)`` of every CKG edge, before the softmax: (E,). One matmul per relation (a loop over
        relations, never over nodes or edges)."""
        e = self.base_vectors()
        scores = torch.empty(self.ckg.num_edges, device=e.device)
        pointer = self.ckg.relation_pointer.tolist()
        for r in range(self.ckg.num_relations):
            start, end = pointer[r], pointer[r + 1]
            if start == end:
                continue
            w = self.relation_matrix.weight[r].view(self.dim, self.kg_dim)
            h_r, t_r = e[self.heads[start:end]] @ w, e[self.tails[start:end]] @ w  # (E_r, k)
            scores[start:end] = (t_r * torch.tanh(h_r + self.relation.weight[r])).sum(-1)
        return scores

    @torch.no_grad()
    def on_epoch_end(self) -> None:
        """Recompute the attention from the current embeddings (the paper: once per epoch)."""
        self.attention.copy_(kgnn.scatter_softmax(self.edge_scores(), self.heads, self.ckg.num_nodes))
        self._cache, self._attention_known = None, True

    def ensure_attention(self) -> None:
        """Compute the attention from the current embeddings if it never was (a new model: the attention is
        computed on first use, so that subclasses are fully built when their ``base_vectors`` first runs). A flag,
        not a look at the tensor: a look would make every training step wait for the GPU."""
        if not self._attention_known:
            if bool(torch.isnan(self.attention[:1]).any()):
                self.on_epoch_end()
            self._attention_known = True

    def propagate(self) -> FloatTensor:
        """The final vector of every node, ``[e^(0) ; e^(1) ; ... ; e^(L)]``: (num_nodes, d + sum(layers))."""
        return torch.cat(self.layer_outputs(), dim=-1)

    def layer_outputs(self) -> list[FloatTensor]:
        """``e^(0), e^(1), ..., e^(L)`` of every node: each (num_nodes, d_l)."""
        self.ensure_attention()
        ego = self.base_vectors()
        outputs = [ego]
        edges = self.edges()
        for layer in self.layers:
            side = kgnn.edge_matmul(self.attention, edges, ego)  # e_N(h) = sum_t pi(h, r, t) e_t
            ego = self.dropout(layer(ego, side))
            outputs.append(F.normalize(ego, dim=-1))
        return outputs

    def edges(self) -> kgnn.EdgeIndex:
        """The CKG as a propagation pattern ``head <- tail`` on the buffers' device (built once per device)."""
        if self._edges is None or self._edges.cols.device != self.heads.device:
            self._edges = kgnn.EdgeIndex(self.tails, self.heads, self.ckg.num_nodes)
        return self._edges

    def final_vectors(self) -> FloatTensor:
        """:meth:`propagate`, computed once and reused while evaluating (no dropout, no gradient)."""
        if self.training or torch.is_grad_enabled():
            return self.propagate()
        if self._cache is None:
            self._cache = self.propagate()
        return self._cache

    def train(self, mode: bool = True) -> Self:
        self._cache = None
        return super().train(mode)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._cache, self._attention_known = None, False  # loaded attention: looked at once on first use
        super()._load_from_state_dict(*args, **kwargs)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        final = self.final_vectors()
        return (final[users] * final[self.item_node[items]]).sum(-1)

    def score_all(self, users: LongTensor) -> FloatTensor:
        final = self.final_vectors()
        return final[users] @ final[self.item_node].T  # (B, num_items)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        rows = torch.cat([batch.users, self.item_node[batch.pos_items], self.item_node[batch.neg_items]])
        # the batch's rows of each layer, concatenated: the (num_nodes, d + sum(layers)) matrix is never built
        u, i, j = torch.cat([out[rows] for out in self.layer_outputs()], dim=-1).split(len(batch.users))
        return kgnn.bpr_loss((u * i).sum(-1), (u * j).sum(-1)) + self.l2 * kgnn.l2_penalty(u, i, j)

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """``sum_hops log pi``: the attention each hop's message gets on its way to the candidate (the node nearer
        the candidate aggregates from the farther one, so the CKG edge is (nearer, r or r^-1, farther)). Paths are
        over :func:`models.paths.with_interactions`: nodes past the KG's entities are users, relation
        ``num_kg_relations`` is ``interact``. The attention is the same for every user (``users`` (P,) is not
        read); the edge lookup runs on the model's device."""
        self.ensure_attention()
        device = self.attention.device
        if self._edge_keys.device != device:  # the (relation, head, tail) index follows the model, once per move
            self._edge_keys, self._edge_order = self._edge_keys.to(device), self._edge_order.to(device)
        num_entities, base = self.ckg.num_nodes - self.num_users, self.ckg.num_relations // 2
        node = torch.where(paths.entities >= num_entities, paths.entities - num_entities,
                           paths.entities + self.num_users)  # path node -> CKG node
        a, b = node[:, :-1], node[:, 1:]  # hop j walks a -> b, toward the candidate
        _, relations, _, valid = paths.hop_triples()
        relation = torch.where(relations == base - 1, INTERACT, relations + 1)  # KG relation r is r + 1 in the CKG
        # walked head -> tail (not inverse): the edge b -> a is the inverse triple; else the triple itself
        ckg_relation = torch.where(paths.inverse, relation, relation + base)
        n = self.ckg.num_nodes
        keys = ((ckg_relation * n + b) * n + a).clamp_min(0)  # (P, 3)
        found = torch.searchsorted(self._edge_keys, keys).clamp_max(len(self._edge_keys) - 1)
        attention = self.attention[self._edge_order[found]]
        attention = torch.where(self._edge_keys[found] == keys, attention, 0.0)  # a hop outside the CKG: weight 0
        return hop_sum(attention.clamp_min(torch.finfo(torch.float32).tiny).log(), valid)

    def kg_triples(self) -> KnowledgeGraph:
        """The CKG's triples (``kg_loss_on="ckg"``: interactions, KG and inverses, as the authors' code), or the item
        KG's own triples (``"kg"``: as RecBole's KGAT), in node and CKG relation indices."""
        ckg = self.ckg.as_kg()
        if self.kg_loss_on == "ckg":
            return ckg
        base = self.ckg.num_relations // 2
        keep = (ckg.relations > INTERACT) & (ckg.relations < base)
        return replace(ckg, heads=ckg.heads[keep], relations=ckg.relations[keep], tails=ckg.tails[keep])

    def kg_loss(self, batch: TripleBatch) -> FloatTensor:
        h, t, t_neg = self.node(batch.heads), self.node(batch.tails), self.node(batch.neg_tails)
        r, m = self.relation(batch.relations), self.matrices(batch.relations)
        pos, neg = kgnn.transr_pair_distance(h, r, t, t_neg, m)
        return kgnn.bpr_loss(-pos, -neg) + self.l2 * kgnn.l2_penalty(h, r, t, t_neg)
