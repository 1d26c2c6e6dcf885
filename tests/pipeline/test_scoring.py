"""``best_paths``: explanations for a chunk of users at once, only for each user's first ``explain_top`` items."""

from __future__ import annotations

import pytest
import torch

from models.explain import Explainer
from models.fit import build_model
from pipeline.scoring import PathRows, TopK, best_paths
from tests.models.cases import tiny_data


def recs() -> TopK:
    """Every user's three items, a different order each, ranks 1..3."""
    users = torch.arange(4).repeat_interleave(3)
    items = torch.tensor([2, 1, 0, 1, 0, 2, 2, 0, 1, 0, 2, 1])
    return TopK(users, items, -torch.arange(12).float(), torch.arange(1, 4).repeat(4))


def as_rows(paths: PathRows) -> list[tuple]:
    return sorted(zip(paths.users.tolist(), paths.items.tolist(), paths.path_rank.tolist(), paths.length.tolist(),
                      paths.history_item.tolist(), map(tuple, paths.entities.tolist()),
                      map(tuple, paths.relations.tolist()), strict=True))


@pytest.fixture(scope="module")
def explainer() -> Explainer:
    data = tiny_data()
    torch.manual_seed(0)
    return Explainer(build_model("kgat", data, {"layers": [4]}, seed=0), data, history=("train", "valid", "test"))


def test_every_recommendation_is_explained_as_each_users_best(explainer: Explainer) -> None:
    top = recs()
    got = best_paths(explainer, top, 2, progress=False)
    expected = []
    for user in range(4):
        items = top.items[top.users == user]
        best = explainer.best(user, items, 2)
        expected += [(user, int(items[c]), int(r) + 1, int(n), int(h), tuple(e), tuple(rel)) for c, r, n, h, e, rel in
                     zip(best.paths.candidate, best.rank, best.paths.length, best.paths.item,
                         best.paths.entities.tolist(), best.paths.relations.tolist(), strict=True)]
    assert as_rows(got) == sorted(expected) and len({row[0] for row in expected}) == 4
    assert as_rows(best_paths(explainer, top, 2, chunk_users=1, progress=False)) == as_rows(got)  # chunks agree


def test_explain_top_explains_only_each_users_first_items(explainer: Explainer) -> None:
    top = recs()
    every = as_rows(best_paths(explainer, top, 3, progress=False))
    first = best_paths(explainer, top, 3, explain_top=1, chunk_users=3, progress=False)
    rank_one = {(int(u), int(i)) for u, i, r in zip(top.users, top.items, top.ranks, strict=True) if r == 1}
    assert len(first) and {(u, i) for u, i, *_ in as_rows(first)} <= rank_one
    assert as_rows(first) == [row for row in every if row[:2] in rank_one]
    assert len(first) < len(every)
    assert len(best_paths(explainer, top, 0, progress=False)) == 0
