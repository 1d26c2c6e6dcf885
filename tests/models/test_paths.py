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


def star_kg(seed: int) -> KnowledgeGraph:
    """:func:`random_kg` plus a hub: entity 0 linked to most others, so its degree passes ``sqrt(2 E)`` (where the
    exact search switches to finding the middle hop from the forward side) and the cap drops paths through it."""
    kg = random_kg(seed, entities=16, triples=26)
    spokes = torch.arange(1, 13)
    h, r, t = (torch.cat([kg.heads, torch.zeros_like(spokes)]), torch.cat([kg.relations, spokes % 2]),
               torch.cat([kg.tails, spokes]))
    h, r, t = torch.unique(torch.stack([h, r, t], dim=1), dim=0).T
    return KnowledgeGraph(kg.num_entities, kg.num_relations, h, r, t, kg.item_entity)


def with_owner(paths, owner: torch.Tensor, offset: int = 0) -> set[tuple]:
    """(owner, flat candidate, entities, relations, inverse) of every path; ``owner`` of each candidate."""
    out = set()
    for i in range(len(paths)):
        n, c = int(paths.length[i]), int(paths.candidate[i])
        out.add((int(owner[c]), c + offset, tuple(paths.entities[i, : n + 1].tolist()),
                 tuple(paths.relations[i, :n].tolist()), tuple(paths.inverse[i, :n].tolist())))
    return out


def per_owner_union(finder: PathFinder, histories: list[list[int]], candidates: list[list[int]],
                    exclude: list[int] | None = None) -> set[tuple]:
    out, offset = set(), 0
    for o, (history, cands) in enumerate(zip(histories, candidates, strict=True)):
        paths = finder.find(torch.tensor(history, dtype=torch.long), torch.tensor(cands, dtype=torch.long),
                            None if exclude is None else exclude[o])
        out |= with_owner(paths, torch.full((len(cands),), o), offset)
        offset += len(cands)
    return out


def flat(lists: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(owner, value) of every value of every owner's list."""
    owner = torch.tensor([o for o, values in enumerate(lists) for _ in values], dtype=torch.long)
    return owner, torch.tensor([v for values in lists for v in values], dtype=torch.long)


def check_find_many(finder: PathFinder, histories: list[list[int]], candidates: list[list[int]],
                    exclude: list[int] | None = None) -> set[tuple]:
    hist_owner, hist_items = flat(histories)
    cand_owner, cand_items = flat(candidates)
    paths = finder.find_many(hist_owner, hist_items, cand_owner, cand_items,
                             None if exclude is None else torch.tensor(exclude))
    got = with_owner(paths, cand_owner)
    assert len(got) == len(paths)  # no duplicates
    assert bool((paths.target == cand_items[paths.candidate]).all())
    assert got == per_owner_union(finder, histories, candidates, exclude)
    return got


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_degree", [None, 4])
def test_find_many_equals_the_union_of_each_owners_find_on_random_graphs(seed: int, max_degree: int | None) -> None:
    kg = star_kg(seed)
    # owners share items and candidates, and an item is one owner's history and another's candidate
    histories, candidates = [[0, 1, 2], [3], [1, 4], []], [[3, 4], [0, 1, 2], [0], [2, 3]]
    got = check_find_many(PathFinder(kg, max_degree=max_degree), histories, candidates)
    owners = {path[0] for path in got}
    assert len(owners) >= 2 and 3 not in owners  # paths for several owners, none for the one without history


def test_find_many_equals_each_users_find_on_the_tiny_graph_with_interactions() -> None:
    from tests.models.cases import tiny_data

    data = tiny_data()
    graph = with_interactions(data.kg, data.train.users, data.train.items, data.num_users)
    users = list(range(data.num_users))
    histories = [data.train.items[data.train.users == u].tolist() for u in users]
    candidates = [[0, 1, 2]] * len(users)
    exclude = [data.kg.num_entities + u for u in users]  # a user's own node is never walked
    got = check_find_many(PathFinder(graph), histories, candidates, exclude)
    assert not any(exclude[path[0]] in path[2] for path in got)
    assert any(node >= data.kg.num_entities for path in got for node in path[2])  # collaborative hops are there
    check_find_many(PathFinder(data.kg), histories, candidates)


def degree(kg: KnowledgeGraph) -> torch.Tensor:
    return torch.bincount(torch.cat([kg.heads, kg.tails]), minlength=kg.num_entities)


@pytest.mark.parametrize("seed", range(4))
def test_exact_search_finds_the_paths_through_hubs_from_the_forward_side(seed: int) -> None:
    kg = star_kg(seed)
    finder = PathFinder(kg)
    assert int(degree(kg)[0]) > finder.split  # entity 0 is found from the forward side
    history, candidates = [0, 1, 2], [3, 4]
    expected = reference(kg, history, candidates)
    assert any(len(path[2]) == 4 and 0 in path[2][1:3] for path in expected)
    assert as_set(finder.find(torch.tensor(history), torch.tensor(candidates))) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("cap", [3, 8])
def test_the_degree_cap_drops_exactly_the_three_hop_paths_with_a_hub_in_the_middle(seed: int, cap: int) -> None:
    kg = star_kg(seed)
    history, candidates = [0, 1, 2], [3, 4]
    deg = degree(kg).tolist()
    every = reference(kg, history, candidates)
    kept = {p for p in every if len(p[2]) < 4 or max(deg[p[2][1]], deg[p[2][2]]) <= cap}
    got = as_set(PathFinder(kg, max_degree=cap).find(torch.tensor(history), torch.tensor(candidates)))
    assert got == kept
    assert kept < every  # the cap drops paths here
    assert cap == 3 or any(len(p[2]) == 4 for p in got)  # and, at 8, keeps the 3-hop ones no hub is in the way of
