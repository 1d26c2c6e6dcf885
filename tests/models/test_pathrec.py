"""PathRec: the path signal against a walk-by-walk reference, the leave-one-out correction, and explanations that
carry exactly their share of the score."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.base import RecModel
from models.explain import Explainer
from models.pathrec import EPS, PathRec
from tests.models.cases import RecModelCase, tiny_data


def walk_weights(model: PathRec, user: int) -> tuple[list[tuple[int, int, list[float]]], list[float]]:
    """Every directed edge (x, y, [w_k(x, r, y) for each profile k]), one by one, and the mix pi_u."""
    mix = torch.softmax(model.user_profile(model.user.weight[user]), dim=0)
    out = []
    for x, y, r in zip(model.src.tolist(), model.dst.tolist(), model.edge_relation.tolist(), strict=True):
        gate = torch.sigmoid(model.entity_gate(model.entity.weight[y]))[0] * model.inv_degree[x]
        rel = torch.sigmoid(model.profile_relation(model.relation.weight[r]))  # (K,)
        out.append((x, y, [float(w) for w in rel * gate]))
    return out, mix.tolist()


def naive_signal(model: PathRec, user: int, item: int, history: list[int]) -> float:
    """``sum_k pi_uk sum over walks of 1-3 hops from each history entity to the item's entity of
    gamma_L / |H| prod w_k``, walk by walk."""
    edges, mix = walk_weights(model, user)
    target = int(model.item_entity[item])
    gamma = F.softplus(model.length_weight).tolist()
    total = 0.0

    def walk(at: int, weight: list[float], hops: int) -> None:
        nonlocal total
        for x, y, w in edges:
            if x == at:
                step = [a * b for a, b in zip(weight, w, strict=True)]
                if y == target:
                    total += gamma[hops] * sum(m * s for m, s in zip(mix, step, strict=True)) / len(history)
                if hops < 2:
                    walk(y, step, hops + 1)

    for item_ in history:
        walk(int(model.item_entity[item_]), [1.0] * model.profiles, 0)
    return total


class TestPathRec(RecModelCase):
    name = "pathrec"
    hyper = {"embedding_dim": 4, "profiles": 2}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        history = model.history_items[model.history_pointer[user] : model.history_pointer[user + 1]].tolist()
        cf = float(model.user.weight[user] @ model.item.weight[item])
        return cf + float(model.path_weight) * math.log(EPS + naive_signal(model, user, item, history))


def test_a_training_positive_gets_no_credit_for_walks_back_to_itself() -> None:
    torch.manual_seed(0)
    data = tiny_data()
    model = PathRec.from_data(data, embedding_dim=4, profiles=3)
    user, pos = 0, 0  # user 0 trained on items 0 and 1
    rows = torch.tensor([user])
    u = model.user(rows)
    at = model.item_entity[pos].view(1)
    full = model.walk(model.start(rows), u, at)[0, 0]
    own = torch.zeros(model.num_entities, 1)
    own[at, 0] = 1.0 / 2
    back = model.walk(own, u, at)[0, 0]
    with torch.no_grad():
        expected = naive_signal(model, user, pos, [1]) / 2 * 1  # walks from item 1 only, still over |H| = 2
        assert float(full - back) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_the_walk_reads_the_same_mass_at_shared_or_per_walk_entities() -> None:
    """``walk`` read at entities common to every walk (scoring) or at each walk's own (the loss's pos and neg)."""
    torch.manual_seed(0)
    model = PathRec.from_data(tiny_data(), embedding_dim=4, profiles=2)
    users = torch.tensor([0, 1, 2, 3])
    x, u = model.start(users), model.user(users)
    every = model.walk(x, u, torch.arange(model.num_entities))  # (4, N)
    own = torch.tensor([[3, 0, 5, 3], [6, 5, 0, 1]])  # (J = 2, C = 4): two entities per walk
    torch.testing.assert_close(model.walk(x, u, own), every.gather(1, own.T))
    assert bool((every > 0).any())


def test_a_shown_path_carries_exactly_its_term_of_the_signal() -> None:
    torch.manual_seed(0)
    data = tiny_data()
    model = PathRec.from_data(data, embedding_dim=4, profiles=3)
    paths = Explainer(model, data).explain(0, 2, k=10)
    assert paths
    with torch.no_grad():
        edges, mix = walk_weights(model, 0)
        weight_of = {(x, y): w for x, y, w in edges}
        gamma = F.softplus(model.length_weight).tolist()
        for path in paths:
            weight, at = [1.0] * model.profiles, path.entity
            for hop in path.hops:
                weight = [a * b for a, b in zip(weight, weight_of[(at, hop.entity)], strict=True)]
                at = hop.entity
            term = gamma[len(path.hops) - 1] / 2 * sum(m * w for m, w in zip(mix, weight, strict=True))
            assert path.score == pytest.approx(math.log(term), rel=1e-5)
