"""Explanations for every registered model: real KG paths from the user's history, best first."""

from __future__ import annotations

import math

import pytest
import torch

from models import MODELS
from models.explain import Explainer
from models.fit import build_model
from models.kgcn import KGCN
from models.pathrec import PathRec
from tests.models.cases import TRIPLES, tiny_data

# tiny_data's items 0, 1, 2 sit on entities 3, 0, 5; user 0 trained on items 0 and 1.
KG_TRIPLES = set(TRIPLES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_ranks_real_paths_from_the_users_history(name: str) -> None:
    data = tiny_data()
    torch.manual_seed(0)
    model = build_model(name, data, {}, seed=0)
    explainer = Explainer(model, data)
    paths = explainer.explain(0, 2, k=5)
    assert paths, f"{name}: no path from user 0's history to item 2"
    assert all(p.item in (0, 1) for p in paths)
    scores = [p.score for p in paths]
    assert scores == sorted(scores, reverse=True) and all(s == s for s in scores)  # best first, no NaN
    had = {(u, int(data.kg.item_entity[i])) for u, i in zip(data.train.users.tolist(), data.train.items.tolist(),
                                                             strict=True)}
    for path in paths:
        assert int(data.kg.item_entity[path.item]) == path.entity
        assert path.hops[-1].entity == int(data.kg.item_entity[2])
        for fact in path.facts():
            assert (fact[1:] in KG_TRIPLES) if fact[0] == "triple" else (fact[1:] in had and fact[1] != 0), (name, path)


def test_k_limits_the_paths_and_a_user_without_paths_gets_none() -> None:
    data = tiny_data()
    model = build_model("kgcn", data, {}, seed=0)
    explainer = Explainer(model, data)
    many = explainer.explain(0, 2, k=10)
    assert len(explainer.explain(0, 2, k=1)) == 1 and len(many) >= 1
    assert explainer.explain_many(0, [2, 2], k=1)[1] == explainer.explain(0, 2, k=1)


def test_kgat_scores_a_path_by_the_attention_along_it() -> None:
    data = tiny_data()
    torch.manual_seed(0)
    model = build_model("kgat", data, {"layers": [4]}, seed=0)
    paths = Explainer(model, data).explain(0, 2, k=10)
    ckg = model.ckg
    edges = {(h, r, t): i for i, (h, r, t) in enumerate(zip(ckg.heads.tolist(), ckg.relations.tolist(),
                                                          ckg.tails.tolist(), strict=True))}
    base, users = ckg.num_relations // 2, data.num_users
    node = lambda hop: hop.user if hop.user is not None else hop.entity + users  # noqa: E731
    for path in paths:
        expected, at = 0.0, path.entity + users
        for hop in path.hops:  # the node nearer the candidate aggregates from the farther one
            relation = 0 if hop.relation is None else hop.relation + 1
            relation = relation if hop.inverse else relation + base
            expected += float(torch.log(model.attention[edges[(node(hop), relation, at)]]))
            at = node(hop)
        assert path.score == pytest.approx(expected, rel=1e-5)


def fitted(name: str, data) -> torch.nn.Module:
    """``name`` on ``data``, untrained but with popularity counts (so Popularity's scores are not all zero)."""
    torch.manual_seed(0)
    model = build_model(name, data, {}, seed=0)
    if name == "pop":
        model.counts.copy_(torch.bincount(data.train.items, minlength=data.num_items).float())
    return model


def rows(best, owner: torch.Tensor) -> list[tuple]:
    """(owner, candidate, rank, entities, relations, inverse) of each path, in order; and the scores apart."""
    p = best.paths
    return [(int(owner[int(p.candidate[i])]), int(p.candidate[i]), int(best.rank[i]), tuple(p.entities[i].tolist()),
             tuple(p.relations[i].tolist()), tuple(p.inverse[i].tolist())) for i in range(len(best))]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_best_many_equals_each_users_best(name: str) -> None:
    data = tiny_data()
    explainer = Explainer(fitted(name, data), data, history=("train", "valid"))
    users = torch.tensor([0, 1, 2, 3])
    items = torch.tensor([[2, 1, 0], [1, 0, 2], [2, 1, 0], [0, 2, 1]])  # (U, J)
    many = explainer.best_many(users, items, k=2)
    expected, scores = [], []
    for row, user in enumerate(users.tolist()):
        one = explainer.best(user, items[row], k=2)
        expected += [(row, c + 3 * row, *rest) for _, c, *rest in rows(one, torch.zeros(3, dtype=torch.long))]
        scores.append(one.scores)
    assert rows(many, torch.arange(4).repeat_interleave(3)) == expected
    assert len({r[0] for r in expected}) >= 3  # several users have paths
    torch.testing.assert_close(many.scores, torch.cat(scores), rtol=1e-5, atol=1e-6)
    # the flat form, users with different numbers of candidates
    owner = torch.tensor([0, 0, 1, 2, 2, 2])
    flat = explainer.best_many(users[:3], torch.tensor([2, 1, 1, 2, 1, 0]), k=2, owner=owner)
    keep = {0: 0, 1: 1, 3: 2, 6: 3, 7: 4, 8: 5}  # (U, J) position -> flat position
    subset = [(o, keep[c], *rest) for o, c, *rest in expected if c in keep]
    assert rows(flat, owner) == subset


def old_path_scores(model, user: int, paths) -> torch.Tensor:
    """The per-user ``path_scores(user: int, paths)`` of the models whose scores depend on the user, as it was."""
    from models.paths import hop_sum

    if isinstance(model, KGCN):
        u = model.user.weight[user]
        log_attention = torch.log_softmax(model.relation.weight @ u / len(u), dim=0)
        _, relations, _, valid = paths.hop_triples()
        return hop_sum(log_attention[relations.clamp_min(0)], valid)
    users = torch.tensor([user])
    mix = model.profile_mix(model.user(users))[0]
    relation = torch.sigmoid(model.profile_relation(model.relation.weight))
    gate = torch.sigmoid(model.entity_gate(model.entity.weight)).squeeze(-1)
    a, b = paths.entities[:, :-1].clamp_min(0), paths.entities[:, 1:].clamp_min(0)
    _, relations, _, valid = paths.hop_triples()
    hop = relation[relations.clamp_min(0)] * (gate[b] * model.inv_degree[a])[..., None]
    hop = torch.where(valid[..., None], hop, torch.ones_like(hop))
    gamma = torch.nn.functional.softplus(model.length_weight)[paths.length - 1]
    return (hop.prod(dim=1) * mix).sum(-1).log() + gamma.log() - math.log(float(model.history_size(users)[0]))


@pytest.mark.parametrize("name", sorted(MODELS))
@torch.no_grad()
def test_path_scores_with_a_user_per_path_equal_the_per_user_calls(name: str) -> None:
    data = tiny_data()
    model = fitted(name, data).eval()
    explainer = Explainer(model, data)
    users = torch.tensor([0, 1, 2, 3])
    hist_owner, hist_items = explainer.pointer, explainer.items
    owner = torch.repeat_interleave(torch.arange(4), hist_owner[1:] - hist_owner[:-1])
    cand_owner, cand_items = torch.arange(4).repeat_interleave(3), torch.arange(3).repeat(4)
    paths = explainer.finder.find_many(owner, hist_items, cand_owner, cand_items)  # every user's paths, mixed
    path_users = users[cand_owner[paths.candidate]]
    assert len(paths) and len(torch.unique(path_users)) >= 3
    together = model.path_scores(path_users, paths)
    assert together.shape == (len(paths),) and bool(torch.isfinite(together).all())
    for user in users.tolist():
        mine = torch.nonzero(path_users == user).flatten()
        alone = model.path_scores(torch.full((len(mine),), user), paths.select(mine))
        torch.testing.assert_close(together[mine], alone)
        if isinstance(model, KGCN | PathRec):  # the user matters: against the per-user formula as it was
            torch.testing.assert_close(together[mine], old_path_scores(model, user, paths.select(mine)))
