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
    for path in paths:
        assert int(data.kg.item_entity[path.item]) == path.entity
        assert path.hops[-1].entity == int(data.kg.item_entity[2])
        assert all(t in KG_TRIPLES for t in path.triples()), (name, path)


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
    path = Explainer(model, data).explain(0, 2, k=1)[0]
    ckg = model.ckg
    edges = {(h, r, t): i for i, (h, r, t) in enumerate(zip(ckg.heads.tolist(), ckg.relations.tolist(),
                                                          ckg.tails.tolist(), strict=True))}
    expected, at, base = 0.0, path.entity, ckg.num_relations // 2
    for hop in path.hops:  # the node nearer the candidate aggregates from the farther one
        relation = hop.relation + 1 if hop.inverse else hop.relation + 1 + base
        edge = edges[(hop.entity + data.num_users, relation, at + data.num_users)]
        expected += float(torch.log(model.attention[edge]))
        at = hop.entity
    assert path.score == pytest.approx(expected, rel=1e-5)
