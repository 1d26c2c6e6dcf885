"""Path enumeration against a depth-first reference on small random graphs; every hop is a real triple."""

from __future__ import annotations

import pytest
import torch

from models.graph import KnowledgeGraph
from models.paths import PathFinder, with_interactions


def random_kg(seed: int, entities: int = 12, triples: int = 22, relations: int = 3, items: int = 5) -> KnowledgeGraph:
    gen = torch.Generator().manual_seed(seed)
    hrt = torch.stack([torch.randint(entities, (triples,), generator=gen),
                       torch.randint(relations, (triples,), generator=gen),
                       torch.randint(entities, (triples,), generator=gen)], dim=1)
    h, r, t = torch.unique(hrt[hrt[:, 0] != hrt[:, 2]], dim=0).T  # distinct triples, no self-loops (as a built KG)
    return KnowledgeGraph(entities, relations, h, r, t, torch.randperm(entities, generator=gen)[:items])


def reference(kg: KnowledgeGraph, history: list[int], candidates: list[int]) -> set[tuple]:
    """Every simple path of 1-3 hops, depth first: (item, target, entities, relations, inverse)."""
    edges = [(int(h), int(r), int(t), False) for h, r, t in zip(kg.heads, kg.relations, kg.tails, strict=True)]
    edges += [(t, r, h, True) for h, r, t, _ in edges]
    found = set()

    def walk(item: int, path: list[int], rels: list[int], inv: list[bool]) -> None:
        for target in candidates:
            if len(rels) and path[-1] == int(kg.item_entity[target]):
                found.add((item, target, tuple(path), tuple(rels), tuple(inv)))
        if len(rels) == 3:
            return
        for a, r, b, flag in edges:
            if a == path[-1] and b not in path:
                walk(item, [*path, b], [*rels, r], [*inv, flag])

    for item in history:
        walk(item, [int(kg.item_entity[item])], [], [])
    return found


def as_set(paths) -> set[tuple]:
    out = set()
    for i in range(len(paths)):
        n = int(paths.length[i])
        out.add((int(paths.item[i]), int(paths.target[i]), tuple(paths.entities[i, : n + 1].tolist()),
                 tuple(paths.relations[i, :n].tolist()), tuple(paths.inverse[i, :n].tolist())))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_every_simple_path_up_to_three_hops_is_found_once(seed: int) -> None:
    kg = random_kg(seed)
    history, candidates = [0, 1, 2], [3, 4]
    paths = PathFinder(kg).find(torch.tensor(history), torch.tensor(candidates))
    got = as_set(paths)
    assert len(got) == len(paths)  # no duplicates
    assert got == reference(kg, history, candidates)
    assert len(got) > 0


def test_each_hop_is_a_triple_of_the_graph_in_its_direction() -> None:
    kg = random_kg(1)
    paths = PathFinder(kg).find(torch.tensor([0, 1, 2]), torch.tensor([3, 4]))
    triples = set(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist(), strict=True))
    heads, relations, tails, valid = paths.hop_triples()
    hops = zip(heads[valid].tolist(), relations[valid].tolist(), tails[valid].tolist(), strict=True)
    assert all(hop in triples for hop in hops)
    assert bool((paths.entities[torch.arange(len(paths)), paths.length] == kg.item_entity[paths.target]).all())


def test_interactions_add_user_nodes_and_the_explained_user_is_never_walked_through() -> None:
    kg = random_kg(2)
    users, items = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 2])  # user 1 had items 1 and 2
    graph = with_interactions(kg, users, items, num_users=2)
    assert (graph.num_entities, graph.num_relations) == (kg.num_entities + 2, kg.num_relations + 1)
    paths = PathFinder(graph).find(torch.tensor([0, 1]), torch.tensor([2]), exclude=kg.num_entities + 0)
    e = kg.item_entity
    collaborative = (int(e[1]), kg.num_entities + 1, int(e[2]))  # item 1 <- user 1 -> item 2
    walks = {tuple(paths.entities[i, : int(paths.length[i]) + 1].tolist()) for i in range(len(paths))}
    assert collaborative in walks
    assert not any(kg.num_entities + 0 in walk for walk in walks)
    i = next(i for i in range(len(paths)) if tuple(paths.entities[i, :3].tolist()) == collaborative)
    assert paths.relations[i, :2].tolist() == [kg.num_relations] * 2 and paths.inverse[i, :2].tolist() == [True, False]
