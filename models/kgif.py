"""KGIF: knowledge graph information fusion — entity and relation embeddings fused by self-attention inside KGAT's
attentive propagation, with dynamic (relation-conditioned) projection vectors.

"KGIF: Optimizing Relation-Aware Recommendations with Knowledge Graph Information Fusion" (arXiv 2501.04161; seed
``004_*``). The summary names the parts (explicit entity-relation fusion by self-attention, dynamic projection
vectors, attentive propagation, path visualisation) but no equations. The choices made here, each ablated in the
benchmark, on top of :class:`models.kgat.KGAT` (CKG, alternating BPR and KG phases, bi-interaction, layer concat):

- Dynamic projection vectors (``projection="dynamic"``), after TransD (Ji, He, Xu, Liu, Zhao, ACL 2015): every node
  e and relation r has a projection vector, ``e_p`` and ``r_p``, and ``e_r = e + <e_p, e> r_p`` is e seen by r (the
  projection ``r_p e_p^T + I`` built per (entity, relation) pair instead of one matrix per relation; needs
  ``kg_embedding_dim == embedding_dim``). It replaces ``W_r`` in the attention
  ``pi(h, r, t) = (t_r)^T tanh(h_r + e_r)`` and in the KG loss ``||h_r + e_r - t_r||^2`` (normalised, as KGAT's).
  ``projection="matrix"`` keeps KGAT's ``W_r`` (the ablation).
- Explicit fusion (``fusion=True``): at each layer, an edge's message is not the tail's vector alone but the tail
  token of a single-head self-attention over the triple's three tokens ``[e_h, q_r, e_t]`` (``q_r`` a per-layer
  relation vector of the layer's width): ``softmax(Q K^T / sqrt(d)) V`` with learned ``Q, K, V``, plus the tail's
  own vector (a residual), so the message carries the head and relation context it travels in. The messages are
  then summed with KGAT's attention weights (a scatter-sum over the edge index). ``fusion=False`` sends ``e_t`` as
  KGAT does (the ablation).
- The attention is recomputed once per epoch from the projected layer-0 vectors, as in KGAT; the explanation paths
  are ranked by it (``path_scores``, inherited).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import nn as kgnn
from models.base import TripleBatch
from models.graph import KnowledgeGraph
from models.kgat import KGAT
from models.typing import FloatTensor, LongTensor

PROJECTIONS = ("dynamic", "matrix")


class TripleAttention(nn.Module):
    """Single-head self-attention over the tokens [head, relation, tail] of each edge; returns the tail token.
    tokens: (E, 3, d) -> (E, d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        for linear in (self.q, self.k, self.v):
            nn.init.xavier_uniform_(linear.weight)

    def forward(self, tokens: FloatTensor) -> FloatTensor:
        tail = tokens[:, 2:3]  # (E, 1, d): only the tail token's output is needed
        weights = torch.softmax(self.q(tail) @ self.k(tokens).transpose(1, 2) / math.sqrt(tokens.shape[-1]), dim=-1)
        return (weights @ self.v(tokens)).squeeze(1)  # (E, d)


class KGIF(KGAT):
    def __init__(self, *, kg: KnowledgeGraph, projection: str = "dynamic", fusion: bool = True, **kgat: Any) -> None:
        if projection not in PROJECTIONS:
            raise ValueError(f"unknown projection {projection!r}; expected one of {PROJECTIONS}")
        super().__init__(kg=kg, **kgat)
        self.projection, self.fusion = projection, bool(fusion)
        self.register_buffer("edge_relation", self.ckg.relations.clone())
        if projection == "dynamic":
            if self.kg_dim != self.dim:
                raise ValueError(f"dynamic projection needs kg_embedding_dim == embedding_dim, got {self.kg_dim} "
                                 f"and {self.dim}")
            del self.relation_matrix  # W_r is replaced by the projection vectors
            self.node_projection = nn.Embedding(self.ckg.num_nodes, self.dim)  # e_p
            self.relation_projection = nn.Embedding(self.ckg.num_relations, self.dim)  # r_p
            for table in (self.node_projection, self.relation_projection):
                nn.init.xavier_uniform_(table.weight)
        if self.fusion:
            sizes = [self.dim] + [layer.linear.out_features for layer in self.layers][:-1]
            self.layer_relations = nn.ModuleList(nn.Embedding(self.ckg.num_relations, d) for d in sizes)  # q_r
            self.fusers = nn.ModuleList(TripleAttention(d) for d in sizes)
            for table in self.layer_relations:
                nn.init.xavier_uniform_(table.weight)

    def project(self, e: FloatTensor, nodes: LongTensor, relations: LongTensor) -> FloatTensor:
        """``e_r = e + <e_p, e> r_p`` (dynamic) or ``e W_r`` (matrix). e: (B, d) of ``nodes``; -> (B, k)."""
        if self.projection == "matrix":
            return kgnn.transr_project(e, self.matrices(relations))
        return e + (self.node_projection(nodes) * e).sum(-1, keepdim=True) * self.relation_projection(relations)

    @torch.no_grad()
    def edge_scores(self) -> FloatTensor:
        if self.projection == "matrix":
            return super().edge_scores()
        e, r = self.base_vectors(), self.edge_relation
        h_r, t_r = self.project(e[self.heads], self.heads, r), self.project(e[self.tails], self.tails, r)
        return (t_r * torch.tanh(h_r + self.relation(r))).sum(-1)

    def layer_outputs(self) -> list[FloatTensor]:
        if not self.fusion:
            return super().layer_outputs()
        self.ensure_attention()
        ego = self.base_vectors()
        outputs = [ego]
        relations = self.edge_relation
        for layer, relation, fuser in zip(self.layers, self.layer_relations, self.fusers, strict=True):
            tokens = torch.stack([ego[self.heads], relation(relations), ego[self.tails]], dim=1)  # (E, 3, d_l)
            message = fuser(tokens) + ego[self.tails]  # the tail in its head and relation context
            side = kgnn.scatter_sum(self.attention[:, None] * message, self.heads, self.ckg.num_nodes)
            ego = self.dropout(layer(ego, side))
            outputs.append(F.normalize(ego, dim=-1))
        return outputs

    def kg_loss(self, batch: TripleBatch) -> FloatTensor:
        if self.projection == "matrix":
            return super().kg_loss(batch)
        h, t, t_neg = self.node(batch.heads), self.node(batch.tails), self.node(batch.neg_tails)
        r_ids = batch.relations
        r = self.relation(r_ids)
        h_r = F.normalize(self.project(h, batch.heads, r_ids), dim=-1)
        dist = lambda e, n: (h_r + F.normalize(r, dim=-1)  # noqa: E731
                             - F.normalize(self.project(e, n, r_ids), dim=-1)).pow(2).sum(-1)
        pos, neg = dist(t, batch.tails), dist(t_neg, batch.neg_tails)
        return kgnn.bpr_loss(-pos, -neg) + self.l2 * kgnn.l2_penalty(h, r, t, t_neg)
