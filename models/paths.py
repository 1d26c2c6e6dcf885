"""KG paths of length 1 to 3 from a user's history items to candidate items, enumerated exactly and vectorised.

A path is ``h = x0 -r1- x1 -r2- x2 ... -rL- xL = c``: ``h`` the entity of a history item, ``c`` the entity of the
candidate, each hop a real triple of the KG walked either way (``inverse`` when walked from tail to head).

Meet in the middle, never a breadth-first search from a hub: one hop forward from the history entities (their
out-edges on the undirected graph: ``F``), one hop back from each candidate (``B``); then
- length 1: a backward neighbour is a history entity;
- length 2: a backward neighbour equals a forward neighbour (a join on the entity);
- length 3: a KG edge joins a forward neighbour to a backward neighbour, found among the out-edges of the
  distinct backward neighbours (or, for a backward neighbour that is a hub, among the forward neighbours' edges into
  hubs).
Every step is a sort + ``searchsorted`` join over tensors; the work is bounded by the edges of the history items,
of the candidates and of the candidates' neighbours. Paths revisiting an entity are dropped. :mod:`models.explain`
ranks them with the model's own path scorer and keeps the best.

:meth:`PathFinder.find_many` does this for many users at once (no loop over users, paths or nodes): every row of
the call has an owner (its user's row, 0..U-1) and every join keys on ``(owner, entity)``, so a path from an owner's
history only ends at a candidate of the same owner. It runs on the device of its input tensors.
"""

from __future__ import annotations

import copy
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
        valid = torch.arange(MAX_LENGTH, device=self.length.device)[None, :] < self.length[:, None]
        return heads, self.relations, tails, valid


class PathFinder:
    """The KG's undirected adjacency (CSR) and the items' entities; :meth:`find_many` enumerates paths.

    ``max_degree`` caps the 3-hop paths: with a cap, ``h - x - y - c`` is enumerated only when both middle entities
    ``x`` and ``y`` have at most ``max_degree`` edges (undirected degree); 1- and 2-hop paths are never capped (a
    2-hop join through a hub costs no more than the hops from the history and the candidates). Why: at amazon-book
    scale a few tail entities have 10^5 edges, and 3-hop paths through them both cost O(hub degree) per user (the
    middle hop is expanded from the out-edges of the candidates' neighbours) and explain nothing ("both are
    books"). None: exact, every path; then the middle hops into a hub (degree above ``sqrt(2 E)``) are found from
    the forward side instead, along each forward neighbour's few edges into hubs, so that a hub costs the paths
    through it rather than its degree per user.
    """

    def __init__(self, kg: KnowledgeGraph, max_degree: int | None = None) -> None:
        if max_degree is not None and max_degree < 1:
            raise ValueError(f"max_degree must be positive or None, got {max_degree}")
        self.kg, self.max_degree = kg, max_degree
        src = torch.cat([kg.heads, kg.tails])
        dst = torch.cat([kg.tails, kg.heads])
        rel = torch.cat([kg.relations, kg.relations])
        inv = torch.cat([torch.zeros(kg.num_triples, dtype=torch.bool), torch.ones(kg.num_triples, dtype=torch.bool)])
        order = torch.argsort(src * kg.num_entities + dst, stable=True)
        self.src, self.dst, self.rel, self.inv = src[order], dst[order], rel[order], inv[order]
        self.pointer = csr_pointer(src, kg.num_entities)
        self.degree = self.pointer[1:] - self.pointer[:-1]  # (num_entities,) undirected degree
        self.item_entity = kg.item_entity
        # middle hops into nodes of degree > split are found from their other end (exact search only)
        self.split = max_degree if max_degree is not None else max(1, int((2 * kg.num_triples) ** 0.5))
        self.hub_edge = torch.nonzero(self.degree[self.dst] > self.split).flatten()  # edges into hubs, by source
        self.hub_pointer = csr_pointer(self.src[self.hub_edge], kg.num_entities)

    @property
    def device(self) -> torch.device:
        return self.src.device

    def to(self, device: torch.device | str) -> PathFinder:
        """A copy with the adjacency on ``device`` (``kg`` itself stays where it is)."""
        moved = copy.copy(self)
        for name in ("src", "dst", "rel", "inv", "pointer", "degree", "item_entity", "hub_edge", "hub_pointer"):
            setattr(moved, name, getattr(self, name).to(device))
        return moved

    def out_edges(self, nodes: LongTensor) -> tuple[LongTensor, LongTensor]:
        """(position in ``nodes``, edge id) of every out-edge of each node. nodes: (n,)."""
        owner, _, edge = expand_ranges(self.pointer[nodes], self.pointer[nodes + 1] - self.pointer[nodes])
        return owner, edge

    def find(self, history: LongTensor, candidates: LongTensor, exclude: int | None = None) -> PathSet:
        """Every path of length <= 3 from the entities of ``history`` (items) to those of ``candidates`` (items),
        none through the node ``exclude`` (the user being explained, on a graph with interactions): one owner of
        :meth:`find_many`."""
        excluded = None if exclude is None else torch.tensor([exclude], device=history.device)
        return self.find_many(torch.zeros_like(history), history, torch.zeros_like(candidates), candidates, excluded)

    def find_many(self, hist_owner: LongTensor, hist_items: LongTensor, cand_owner: LongTensor, cand_items: LongTensor,
                  exclude: LongTensor | None = None) -> PathSet:
        """Every path of length <= 3 (3-hop ones capped by ``max_degree``) from the entities of each owner's history
        items to those of the same owner's candidates, for U owners at once.

        hist_owner, hist_items: (H,) an owner (0..U-1) and one of its history items; cand_owner, cand_items: (C,)
        likewise for the candidates; exclude: (U,) a node per owner that none of its paths passes through (the user
        node, on a graph with interactions), or None. The PathSet's ``candidate`` indexes the C candidates.

        Work and memory grow with the sum over owners of: the out-edges of the history and candidate entities, the
        out-edges of the distinct backward neighbours of degree <= ``max_degree`` (or <= ``sqrt(2 E)`` without a
        cap, plus each forward neighbour's edges into hubs) and the paths found, about linearly in the number of
        owners. The caller chunks the owners to bound it.
        """
        n = self.kg.num_entities  # join keys: owner * n + entity
        hist_entity, cand_entity = self.item_entity[hist_items], self.item_entity[cand_items]  # (H,), (C,)
        f_pos, f_edge = self._hops(hist_entity, hist_owner, exclude)  # forward hop: history h -> x
        b_pos, b_edge = self._hops(cand_entity, cand_owner, exclude)  # backward hop: candidate c -> y (walked y -> c)
        f_key = hist_owner[f_pos] * n + self.dst[f_edge]  # (owner, x)
        b_key = cand_owner[b_pos] * n + self.dst[b_edge]  # (owner, y)
        items = (hist_items, cand_items)
        # length 1: y is a history entity of the same owner; the path is h -(b_edge reversed)- c
        bi, hi = _join(b_key, hist_owner * n + hist_entity)
        parts = [self._paths(hi, [b_edge[bi]], b_pos[bi], *items, reversed_hops=[True])]
        # length 2: x == y
        fi, bi = _join(f_key, b_key)
        parts.append(self._paths(f_pos[fi], [f_edge[fi], b_edge[bi]], b_pos[bi], *items, reversed_hops=[False, True]))
        # length 3: an edge x - y with x a forward and y a backward neighbour of the same owner
        fi, mid_edge, bj = self._middle(f_key, b_key)  # y not a hub: the edge y -> x, reversed
        parts.append(self._paths(f_pos[fi], [f_edge[fi], mid_edge, b_edge[bj]], b_pos[bj], *items,
                                 reversed_hops=[False, True, True]))
        if self.max_degree is None:
            fi, mid_edge, bj = self._middle_to_hubs(f_key, b_key)  # y a hub: the edge x -> y
            parts.append(self._paths(f_pos[fi], [f_edge[fi], mid_edge, b_edge[bj]], b_pos[bj], *items,
                                     reversed_hops=[False, False, True]))
        paths = _cat(parts)
        return paths.select(torch.nonzero(_simple(paths.entities, paths.length)).flatten())

    def _hops(self, entity: LongTensor, owner: LongTensor, exclude: LongTensor | None) -> tuple[LongTensor, LongTensor]:
        """:meth:`out_edges` of ``entity`` (n,), without those from or to their owner's excluded node."""
        pos, edge = self.out_edges(entity)
        if exclude is None:
            return pos, edge
        banned = exclude[owner[pos]]
        keep = torch.nonzero((entity[pos] != banned) & (self.dst[edge] != banned)).flatten()
        return pos[keep], edge[keep]

    def _middle(self, f_key: LongTensor, b_key: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
        """The middle hops of 3-hop paths through a y of degree <= ``split`` (and, with a cap, an x of degree <=
        ``max_degree``): (forward hop, edge y -> x, backward hop) of every edge between a forward neighbour x and a
        backward neighbour y of the same owner; expanded from the distinct (owner, y), each edge searched among the
        forward keys (the smaller side is the one sorted)."""
        n = self.kg.num_entities
        ys = torch.unique(b_key)  # distinct (owner, y)
        ys = ys[self.degree[ys % n] <= self.split]
        forward = torch.arange(len(f_key), device=f_key.device)
        if self.max_degree is not None:
            forward = torch.nonzero(self.degree[f_key % n] <= self.max_degree).flatten()
        y_at, m_edge = self.out_edges(ys % n)  # out-edges of y: y -> x
        mi, fi = _join((ys - ys % n)[y_at] + self.dst[m_edge], f_key[forward])  # on (owner, x)
        bj, mj = _join(b_key, ys[y_at[mi]])  # on (owner, y)
        return forward[fi[mj]], m_edge[mi[mj]], bj

    def _middle_to_hubs(self, f_key: LongTensor, b_key: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
        """The middle hops of 3-hop paths through a hub y (degree > ``split``): (forward hop, edge x -> y, backward
        hop), expanded from the distinct (owner, x) along their edges into hubs."""
        n = self.kg.num_entities
        xs = torch.unique(f_key)  # distinct (owner, x)
        start = self.hub_pointer[xs % n]
        x_at, _, at = expand_ranges(start, self.hub_pointer[xs % n + 1] - start)
        h_edge = self.hub_edge[at]  # x -> y, y a hub
        bj, hi = _join(b_key, (xs - xs % n)[x_at] + self.dst[h_edge])  # on (owner, y)
        fi, hj = _join(f_key, xs[x_at[hi]])  # on (owner, x)
        return fi, h_edge[hi[hj]], bj[hj]

    def _paths(self, hist_pos: LongTensor, edges: list[LongTensor], cand_pos: LongTensor, history: LongTensor,
               candidates: LongTensor, reversed_hops: list[bool]) -> PathSet:
        """Paths from their hop edges: each edge id walked forward (src -> dst) or reversed (dst -> src)."""
        n, length, device = len(cand_pos), len(edges), cand_pos.device
        entities = torch.full((n, MAX_LENGTH + 1), -1, dtype=torch.long, device=device)
        relations = torch.full((n, MAX_LENGTH), -1, dtype=torch.long, device=device)
        inverse = torch.zeros(n, MAX_LENGTH, dtype=torch.bool, device=device)
        for j, (edge, reverse) in enumerate(zip(edges, reversed_hops, strict=True)):  # over hops (<= 3)
            a, b = (self.dst[edge], self.src[edge]) if reverse else (self.src[edge], self.dst[edge])
            entities[:, j], entities[:, j + 1] = a, b
            relations[:, j] = self.rel[edge]
            inverse[:, j] = self.inv[edge] ^ reverse  # undirected edge stored inverse, walked reversed
        return PathSet(cand_pos, candidates[cand_pos], history[hist_pos], entities, relations, inverse,
                       torch.full((n,), length, dtype=torch.long, device=device))


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
    real = torch.arange(MAX_LENGTH + 1, device=length.device)[None, :] <= length[:, None]
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
