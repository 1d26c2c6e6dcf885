"""The collaborative knowledge graph: node and relation numbering, inverses, order by relation."""

from __future__ import annotations

import torch

from models.ckg import INTERACT, collaborative_graph
from tests.models.cases import ITEM_ENTITY, NUM_USERS, TRAIN, TRIPLES, tiny_data


def test_every_interaction_and_triple_appears_with_its_inverse() -> None:
    data = tiny_data()
    ckg = collaborative_graph(data.kg, data.train.users, data.train.items, data.num_users)
    base = data.kg.num_relations + 1
    assert (ckg.num_nodes, ckg.num_relations) == (NUM_USERS + 7, 2 * base)
    assert ckg.item_node.tolist() == [NUM_USERS + e for e in ITEM_ENTITY]
    expected = {(u, INTERACT, NUM_USERS + ITEM_ENTITY[i]) for u, i in TRAIN}
    expected |= {(NUM_USERS + h, r + 1, NUM_USERS + t) for h, r, t in TRIPLES}
    expected |= {(t, r + base, h) for h, r, t in expected}
    got = list(zip(ckg.heads.tolist(), ckg.relations.tolist(), ckg.tails.tolist(), strict=True))
    assert len(got) == len(expected) == 2 * (len(TRAIN) + len(TRIPLES))
    assert set(got) == expected


def test_edges_are_sorted_by_relation_with_a_pointer_to_each() -> None:
    data = tiny_data()
    ckg = collaborative_graph(data.kg, data.train.users, data.train.items, data.num_users)
    assert bool((ckg.relations[1:] >= ckg.relations[:-1]).all())
    for r in range(ckg.num_relations):
        block = ckg.relations[ckg.relation_pointer[r] : ckg.relation_pointer[r + 1]]
        assert bool((block == r).all()) and len(block) == int((ckg.relations == r).sum())
    kg = ckg.as_kg()
    assert kg.num_entities == ckg.num_nodes and torch.equal(kg.item_entity, ckg.item_node)
