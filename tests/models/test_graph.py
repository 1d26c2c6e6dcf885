"""models/graph.py: the KnowledgeGraph checks, neighbour sampling and ripple sets.

Sampling is checked on a hand-built graph and on a seeded random one (50 entities, 300 triples).
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from models.graph import (
    KnowledgeGraph,
    Neighbors,
    _positions,
    csr_pointer,
    expand_ranges,
    ripple_sets,
    sample_neighbors,
)
from models.typing import LongTensor


def _kg(triples: list[tuple[int, int, int]], num_entities: int, item_entity: list[int]) -> KnowledgeGraph:
    h, r, t = torch.tensor(triples, dtype=torch.long).T
    num_relations = int(r.max()) + 1
    return KnowledgeGraph(num_entities, num_relations, h, r, t, torch.tensor(item_entity))


def _random_kg(seed: int = 0) -> KnowledgeGraph:
    """50 entities (entity 49 isolated), 4 relations, 300 triples, self-loops and repeats allowed."""
    gen = torch.Generator().manual_seed(seed)
    h, t = torch.randint(49, (2, 300), generator=gen)
    r = torch.randint(4, (300,), generator=gen)
    return KnowledgeGraph(50, 4, h, r, t, torch.arange(0, 50, 5))


# 0 -- 1, 2, 3 (degree 3); 1 -- 0, 2; 2 -- 0, 1; 3 -- 0, 4; 4 -- 3; 5 isolated.
HAND = _kg([(0, 0, 1), (0, 1, 2), (0, 0, 3), (1, 1, 2), (3, 0, 4)], 6, [0, 4])


def _neighbourhoods(kg: KnowledgeGraph) -> dict[int, Counter[tuple[int, int]]]:
    """entity -> multiset of (neighbour, relation) on the undirected graph."""
    edge_index, edge_type = kg.undirected()
    out: dict[int, Counter[tuple[int, int]]] = {e: Counter() for e in range(kg.num_entities)}
    for src, dst, rel in zip(*edge_index.tolist(), edge_type.tolist(), strict=True):
        out[src][(dst, rel)] += 1
    return out


def _sample(kg: KnowledgeGraph, k: int, seed: int) -> Neighbors:
    edge_index, edge_type = kg.undirected()
    return sample_neighbors(edge_index, edge_type, kg.num_entities, k, torch.Generator().manual_seed(seed))


def _sampled(neighbors: Neighbors, entity: int) -> Counter[tuple[int, int]]:
    pairs = zip(neighbors.entity[entity].tolist(), neighbors.relation[entity].tolist(), strict=True)
    return Counter(pair for pair, kept in zip(pairs, neighbors.mask[entity].tolist(), strict=True) if kept)


@pytest.mark.parametrize(("kg", "k"), [(HAND, 2), (HAND, 3), (_random_kg(), 8)])
def test_sample_neighbors_by_degree(kg: KnowledgeGraph, k: int) -> None:
    neighbors = _sample(kg, k, seed=0)
    n = kg.num_entities
    assert neighbors.entity.shape == neighbors.relation.shape == neighbors.mask.shape == (n, k)
    seen_low = seen_high = False
    for entity, true in _neighbourhoods(kg).items():
        drawn = _sampled(neighbors, entity)
        degree = sum(true.values())
        if degree == 0:  # isolated: fully masked, pointing at itself with relation 0
            assert not neighbors.mask[entity].any()
            assert (neighbors.entity[entity] == entity).all() and (neighbors.relation[entity] == 0).all()
            continue
        assert neighbors.mask[entity].all() and drawn.total() == k
        assert set(drawn) <= set(true)  # every sampled (neighbour, relation) is a true edge
        if degree >= k:  # without replacement: no edge drawn more often than it exists
            seen_high = True
            assert all(drawn[pair] <= true[pair] for pair in drawn)
        else:  # every edge at least once, the rest drawn among the neighbours
            seen_low = True
            assert all(drawn[pair] >= true[pair] for pair in true)
    assert seen_low and seen_high  # both regimes occur in every case


def test_sample_neighbors_is_seeded() -> None:
    kg = _random_kg()
    a, b, c = _sample(kg, 8, seed=1), _sample(kg, 8, seed=1), _sample(kg, 8, seed=2)
    assert torch.equal(a.entity, b.entity) and torch.equal(a.relation, b.relation) and torch.equal(a.mask, b.mask)
    hub = int(torch.bincount(kg.undirected()[0][0]).argmax())  # degree ~20 > K
    assert _sampled(a, hub) != _sampled(c, hub)


def test_sample_neighbors_rejects_k_below_one() -> None:
    edge_index, edge_type = HAND.undirected()
    with pytest.raises(ValueError, match="sample size"):
        sample_neighbors(edge_index, edge_type, HAND.num_entities, 0)


# Ripple sets: entities 0..6; items 0..4 on entities 0, 1, 0, 5, 6 (items 0 and 2 share entity 0).
RIPPLE_KG = _kg([(0, 0, 2), (0, 1, 3), (1, 0, 3), (2, 0, 4), (3, 0, 4), (3, 1, 5), (6, 0, 5)], 7, [0, 1, 0, 5, 6])
# user 0: items 0, 1, 2; user 1: item 1; user 2: nothing; user 3: item 3 (entity 5, a sink);
# user 4: item 4 (entity 6 -> 5, then nothing).
RIPPLE_USERS = torch.tensor([0, 0, 0, 1, 3, 4])
RIPPLE_ITEMS = torch.tensor([0, 1, 2, 1, 3, 4])


def _memories(kg: KnowledgeGraph, users: LongTensor, items: LongTensor, num_users: int, hops: int, memory: int,
              seed: int) -> list[list[list[tuple[int, int, int]]]]:
    """user -> hop -> the unmasked (h, r, t) memories."""
    sets = ripple_sets(kg, users, items, num_users, hops, memory, torch.Generator().manual_seed(seed))
    assert sets.heads.shape == sets.relations.shape == sets.tails.shape == sets.mask.shape == (num_users, hops, memory)
    triples = zip(sets.heads.tolist(), sets.relations.tolist(), sets.tails.tolist(), sets.mask.tolist(), strict=True)
    return [[[(h, r, t) for h, r, t, m in zip(*hop, strict=True) if m] for hop in zip(*user, strict=True)]
            for user in triples]


@pytest.mark.parametrize("case", ["hand", "random"])
def test_ripple_memories_spread_from_the_previous_hop(case: str) -> None:
    if case == "hand":
        kg, users, items, num_users = RIPPLE_KG, RIPPLE_USERS, RIPPLE_ITEMS, 5
    else:
        kg, gen = _random_kg(), torch.Generator().manual_seed(5)
        users, items, num_users = torch.randint(12, (40,), generator=gen), torch.randint(10, (40,), generator=gen), 12
    triples = set(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist(), strict=True))
    out_degree = torch.bincount(kg.heads, minlength=kg.num_entities)
    memories = _memories(kg, users, items, num_users, hops=3, memory=6, seed=0)
    for user in range(num_users):
        seeds = {int(kg.item_entity[i]) for u, i in zip(users.tolist(), items.tolist(), strict=True) if u == user}
        for depth, hop in enumerate(memories[user]):
            if depth > 0 and not any(out_degree[s] > 0 for s in seeds):
                assert hop == memories[user][depth - 1]  # a dead end: the previous hop's memories again
                continue
            assert set(hop) <= triples and {h for h, _, _ in hop} <= seeds
            assert len(hop) == (6 if any(out_degree[s] > 0 for s in seeds) else 0)  # all or nothing masked
            seeds = {t for _, _, t in hop}


def test_ripple_masks_users_with_nothing_to_spread_from_and_repeats_a_dead_end() -> None:
    memories = _memories(RIPPLE_KG, RIPPLE_USERS, RIPPLE_ITEMS, 5, hops=2, memory=4, seed=0)
    assert [[len(hop) for hop in user] for user in memories] == [[4, 4], [4, 4], [0, 0], [0, 0], [4, 4]]
    assert memories[4][0] == memories[4][1] == [(6, 0, 5)] * 4  # entity 5 has no out-edge: hop 2 repeats hop 1
    assert set(memories[1][0]) == {(1, 0, 3)}


def test_ripple_draws_are_uniform_over_candidates_with_multiplicity() -> None:
    m = 20_000
    memories = _memories(RIPPLE_KG, RIPPLE_USERS, RIPPLE_ITEMS, 5, hops=2, memory=m, seed=0)
    out_edges = Counter[int](RIPPLE_KG.heads.tolist())
    hop1_seeds = {0: Counter([0, 1, 0]), 1: Counter([1])}  # user 0 reaches entity 0's triples twice
    for user, seeds in hop1_seeds.items():
        for hop, hop_memories in enumerate(memories[user]):
            if hop == 1:  # hop 2 candidates come from the tails actually drawn at hop 1, with multiplicity
                seeds = Counter(t for _, _, t in memories[user][0])
            total = sum(n * out_edges[s] for s, n in seeds.items())
            freq = Counter(hop_memories)
            assert {h for h, _, _ in freq} == {s for s in seeds if out_edges[s]}
            for triple, count in freq.items():
                assert count / m == pytest.approx(seeds[triple[0]] / total, abs=0.02), (user, hop, triple)
    assert Counter(memories[0][0])[(1, 0, 3)] / m == pytest.approx(0.2, abs=0.02)  # 1 of 5 candidates


def test_ripple_positions_are_distinct_when_there_are_enough_candidates() -> None:
    m, n = 8, 3000
    total = torch.tensor([0, 3] + [10] * n + [50] * n)  # 10: every candidate listed; 50: repeats redrawn
    pos = _positions(total, m, torch.Generator().manual_seed(0))
    assert pos.shape == (len(total), m) and pos[0].eq(0).all() and pos[1].lt(3).all()
    for rows, t in ((slice(2, 2 + n), 10), (slice(2 + n, None), 50)):
        block = pos[rows]
        assert block.min() >= 0 and block.max() < t
        assert (block.sort(dim=1).values.diff(dim=1) > 0).all()  # m distinct positions per row
        share = torch.bincount(block.flatten(), minlength=t) / n  # each position in m / t of the rows
        assert torch.allclose(share, torch.full((t,), m / t), atol=0.04), share


@pytest.mark.parametrize(("field", "values", "message"), [
    ("heads", [0, 6], r"heads holds an index outside 0\.\.5"),
    ("tails", [-1, 2], r"tails holds an index outside 0\.\.5"),
    ("relations", [0, 2], r"relations holds an index outside 0\.\.1"),
    ("item_entity", [6], r"item_entity holds an index outside 0\.\.5"),
    ("tails", [1], "same length"),
])
def test_knowledge_graph_rejects_bad_indices(field: str, values: list[int], message: str) -> None:
    fields = {"heads": [0, 1], "relations": [0, 1], "tails": [1, 2], "item_entity": [0]} | {field: values}
    with pytest.raises(ValueError, match=message):
        KnowledgeGraph(6, 2, **{name: torch.tensor(v) for name, v in fields.items()})


def test_expand_ranges_and_csr_pointer() -> None:
    owner, position, index = expand_ranges(torch.tensor([5, 0, 9]), torch.tensor([2, 0, 3]))
    assert owner.tolist() == [0, 0, 2, 2, 2] and position.tolist() == [0, 1, 0, 1, 2]
    assert index.tolist() == [5, 6, 9, 10, 11]
    assert csr_pointer(torch.tensor([2, 0, 2, 2]), 4).tolist() == [0, 1, 1, 4, 4]
