"""KG paths of length 1 to 3 from a user's history items to candidate items, enumerated exactly and vectorised.

A path is ``h = x0 -r1- x1 -r2- x2 ... -rL- xL = c``: ``h`` the entity of a history item, ``c`` the entity of the
candidate, each hop a real triple of the KG walked either way (``inverse`` when walked from tail to head).

Meet in the middle, never a breadth-first search from a hub: one hop forward from the history entities (their
out-edges on the undirected graph: ``F``), one hop back from each candidate (``B``); then
- length 1: a backward neighbour is a history entity;
- length 2: a backward neighbour equals a forward neighbour (a join on the entity);
- length 3: a KG edge joins a forward neighbour to a backward neighbour, found among the out-edges of the
  distinct backward neighbours.
Every step is a sort + ``searchsorted`` join over tensors; the work is bounded by the edges of the history items,
of the candidates and of the candidates' neighbours. Paths revisiting an entity are dropped. :mod:`models.explain`
ranks them with the model's own path scorer and keeps the best.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from models.graph import KnowledgeGraph, csr_pointer, expand_ranges
from models.typing import BoolTensor, LongTensor

MAX_LENGTH = 3


@dataclass(frozen=True)
class PathSet:
    """P paths, padded to 3 hops. candidate: (P,) index into the call's candidates; target: (P,) that candidate
    item; item: (P,) the history item;
    entities: (P, 4) x0..x3 (x0 = the history item's entity); relations, inverse: (P, 3) hop j from x_j to
    x_{j+1}; length: (P,) in 1..3 (hops past ``length`` are padding: entity -1, relation -1)."""

    candidate: LongTensor
    target: LongTensor
    item: LongTensor
    entities: LongTensor
    relations: LongTensor
    inverse: BoolTensor
    length: LongTensor

    def __len__(self) -> int:
        return len(self.candidate)

    def select(self, index: LongTensor) -> PathSet:
        return PathSet(*(getattr(self, f.name)[index] for f in fields(self)))

    def hop_triples(self) -> tuple[LongTensor, LongTensor, LongTensor, BoolTensor]:
        """Each hop as the KG triple it walks: heads, relations, tails (P, 3) and ``valid`` (P, 3)."""
        a, b = self.entities[:, :-1], self.entities[:, 1:]
        heads = torch.where(self.inverse, b, a)
        tails = torch.where(self.inverse, a, b)
        valid = torch.arange(MAX_LENGTH)[None, :] < self.length[:, None]
        return heads, self.relations, tails, valid


class PathFinder:
    """The KG's undirected adjacency (CSR) and the items' entities; :meth:`find` enumerates paths."""

    def __init__(self, kg: KnowledgeGraph) -> None:
        self.kg = kg
        src = torch.cat([kg.heads, kg.tails])
        dst = torch.cat([kg.tails, kg.heads])
        rel = torch.cat([kg.relations, kg.relations])
        inv = torch.cat([torch.zeros(kg.num_triples, dtype=torch.bool), torch.ones(kg.num_triples, dtype=torch.bool)])
        order = torch.argsort(src * kg.num_entities + dst, stable=True)
        self.src, self.dst, self.rel, self.inv = src[order], dst[order], rel[order], inv[order]
        self.pointer = csr_pointer(src, kg.num_entities)

    def out_edges(self, nodes: LongTensor) -> tuple[LongTensor, LongTensor]:
        """(position in ``nodes``, edge id) of every out-edge of each node. nodes: (n,)."""
        owner, _, edge = expand_ranges(self.pointer[nodes], self.pointer[nodes + 1] - self.pointer[nodes])
        return owner, edge

    def find(self, history: LongTensor, candidates: LongTensor, exclude: int | None = None) -> PathSet:
        """Every path of length <= 3 from the entities of ``history`` (items) to those of ``candidates`` (items),
        none through the node ``exclude`` (the user being explained, on a graph with interactions)."""
        hist_entity = self.kg.item_entity[history]  # (H,)
        cand_entity = self.kg.item_entity[candidates]  # (C,)
        f_own, f_edge = self.out_edges(hist_entity)  # forward hop: history h -> x
        b_own, b_edge = self.out_edges(cand_entity)  # backward hop: candidate c -> y (walked y -> c in the path)
        f_x, b_y = self.dst[f_edge], self.dst[b_edge]
        parts = []
        # length 1: y is a history entity; the path is h -(b_edge reversed)- c
        bi, hi = _join(b_y, hist_entity)
        parts.append(self._paths([hi], [b_edge[bi]], b_own[bi], history, candidates, reverse_last=[True]))
        # length 2: x == y
        fi, bi = _join(f_x, b_y)
        parts.append(self._paths([f_own[fi]], [f_edge[fi], b_edge[bi]], b_own[bi], history, candidates,
                                 reverse_last=[False, True]))
        # length 3: an edge x -> y with x a forward and y a backward neighbour
        ys = torch.unique(b_y)
        _, m_edge = self.out_edges(ys)  # out-edges of y: y -> x'
        fi, mi = _join(f_x, self.dst[m_edge])
        if len(fi):
            mid_edge = m_edge[mi]  # y -> x, walked x -> y in the path
            bj, mj = _join(b_y, self.src[mid_edge])
            fi = fi[mj]
            mid_edge = mid_edge[mj]
            parts.append(self._paths([f_own[fi]], [f_edge[fi], mid_edge, b_edge[bj]], b_own[bj], history,
                                     candidates, reverse_last=[False, True, True]))
        paths = _cat(parts)
        keep = _simple(paths.entities, paths.length)
        if exclude is not None:
            keep &= (paths.entities != exclude).all(1)
        return paths.select(torch.nonzero(keep).flatten())

    def _paths(self, hist_pos: list[LongTensor], edges: list[LongTensor], cand_pos: LongTensor, history: LongTensor,
               candidates: LongTensor, reverse_last: list[bool]) -> PathSet:
        """Paths from their hop edges: each edge id walked forward (src -> dst) or reversed (dst -> src)."""
        n, length = len(cand_pos), len(edges)
        entities = torch.full((n, MAX_LENGTH + 1), -1, dtype=torch.long)
        relations = torch.full((n, MAX_LENGTH), -1, dtype=torch.long)
        inverse = torch.zeros(n, MAX_LENGTH, dtype=torch.bool)
        for j, (edge, reverse) in enumerate(zip(edges, reverse_last, strict=True)):  # over hops (<= 3)
            a, b = (self.dst[edge], self.src[edge]) if reverse else (self.src[edge], self.dst[edge])
            entities[:, j], entities[:, j + 1] = a, b
            relations[:, j] = self.rel[edge]
            inverse[:, j] = self.inv[edge] ^ reverse  # undirected edge stored inverse, walked reversed
        return PathSet(cand_pos, candidates[cand_pos], history[hist_pos[0]], entities, relations, inverse,
                       torch.full((n,), length, dtype=torch.long))


def _join(left: LongTensor, right: LongTensor) -> tuple[LongTensor, LongTensor]:
    """Every (i, j) with ``left[i] == right[j]``: an equi-join by sort and ``searchsorted``."""
    order = torch.argsort(right, stable=True)
    ordered = right[order]
    lo = torch.searchsorted(ordered, left, right=False)
    hi = torch.searchsorted(ordered, left, right=True)
    i, _, at = expand_ranges(lo, hi - lo)
    return i, order[at]


def _simple(entities: LongTensor, length: LongTensor) -> BoolTensor:
    """Paths that visit no entity twice. entities: (P, 4) padded with -1."""
    real = torch.arange(MAX_LENGTH + 1)[None, :] <= length[:, None]
    same = (entities[:, :, None] == entities[:, None, :]) & real[:, :, None] & real[:, None, :]
    return same.sum((1, 2)) == real.sum(1)


def _cat(parts: list[PathSet]) -> PathSet:
    return PathSet(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(PathSet)))


def hop_mean(values: torch.Tensor, valid: BoolTensor) -> torch.Tensor:
    """The mean of per-hop values over each path's real hops. values, valid: (P, 3) -> (P,)."""
    return torch.where(valid, values, torch.zeros_like(values)).sum(1) / valid.sum(1).clamp_min(1)


def hop_sum(values: torch.Tensor, valid: BoolTensor) -> torch.Tensor:
    """The sum of per-hop values over each path's real hops. values, valid: (P, 3) -> (P,)."""
    return torch.where(valid, values, torch.zeros_like(values)).sum(1)


def with_interactions(kg: KnowledgeGraph, users: LongTensor, items: LongTensor, num_users: int) -> KnowledgeGraph:
    """``kg`` plus a node per user (``num_entities + user``) and a triple ``(user, interact, item's entity)`` per
    interaction, ``interact`` being relation ``num_relations``: the graph that explanations of models trained on
    the collaborative KG (KGAT and its kin) walk, so "users who had X also had Y" is a path too."""
    return KnowledgeGraph(
        num_entities=kg.num_entities + num_users, num_relations=kg.num_relations + 1,
        heads=torch.cat([kg.heads, users + kg.num_entities]),
        relations=torch.cat([kg.relations, torch.full_like(users, kg.num_relations)]),
        tails=torch.cat([kg.tails, kg.item_entity[items]]), item_entity=kg.item_entity)
