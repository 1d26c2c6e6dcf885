"""The collaborative knowledge graph (CKG) of KGAT: users, items and KG entities as one graph.

Wang, He, Cao, Liu, Chua, "KGAT: Knowledge Graph Attention Network for Recommendation", KDD 2019, §2:
every training interaction ``(u, i)`` becomes a triple ``(u, interact, i)`` and is merged with the item KG;
every triple also gets its inverse ``(t, r^-1, h)`` (the authors' code, and RecBole's), so information flows
both ways during propagation.

Node indices: users first (``0..num_users-1``), then the KG's entities (``num_users + entity``); an item is
the node of its entity. Relation indices: ``0`` is ``interact``, ``1..R`` the KG relations, then the inverses
in the same order (``R + 1`` is ``interact^-1``, ``R + 1 + r`` the inverse of ``r``). Edges are sorted by
relation, then head (so per-relation work reads one contiguous slice: :attr:`relation_pointer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.graph import KnowledgeGraph
from models.typing import LongTensor

INTERACT = 0


@dataclass(frozen=True)
class CollaborativeGraph:
    """Triples over node indices, with inverses. heads, relations, tails: shape (E,), sorted by relation;
    relation_pointer: shape (num_relations + 1,), the edges of relation r at ``relation_pointer[r]:[r+1]``."""

    num_users: int
    num_nodes: int
    num_relations: int
    heads: LongTensor
    relations: LongTensor
    tails: LongTensor
    relation_pointer: LongTensor
    item_node: LongTensor  # (num_items,) the node of each item

    @property
    def num_edges(self) -> int:
        return len(self.heads)

    def as_kg(self) -> KnowledgeGraph:
        """The CKG as a :class:`KnowledgeGraph` over nodes (what the triple sampler reads)."""
        return KnowledgeGraph(num_entities=self.num_nodes, num_relations=self.num_relations, heads=self.heads,
                              relations=self.relations, tails=self.tails, item_entity=self.item_node)


def collaborative_graph(kg: KnowledgeGraph, users: LongTensor, items: LongTensor, num_users: int
                        ) -> CollaborativeGraph:
    """The CKG of ``kg`` and the training interactions ``(users[i], items[i])`` (shape (I,) each)."""
    base = kg.num_relations + 1  # interact + the KG's relations, before inverses
    item_node = kg.item_entity + num_users
    heads = torch.cat([users, kg.heads + num_users])
    relations = torch.cat([torch.full_like(users, INTERACT), kg.relations + 1])
    tails = torch.cat([item_node[items], kg.tails + num_users])
    heads, tails = torch.cat([heads, tails]), torch.cat([tails, heads])
    relations = torch.cat([relations, relations + base])
    num_nodes, num_relations = num_users + kg.num_entities, 2 * base
    order = torch.argsort(relations * num_nodes + heads, stable=True)
    heads, relations, tails = heads[order], relations[order], tails[order]
    pointer = torch.zeros(num_relations + 1, dtype=torch.long)
    pointer[1:] = torch.cumsum(torch.bincount(relations, minlength=num_relations), 0)
    return CollaborativeGraph(num_users, num_nodes, num_relations, heads, relations, tails, pointer, item_node)
