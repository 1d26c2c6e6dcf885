"""Explanations for every registered model: real KG paths from the user's history, best first."""

from __future__ import annotations

import pytest
import torch

from models import MODELS
from models.explain import Explainer
from models.fit import build_model
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
