"""KGNN-LS: KGCN's scorer, plus a naive reference of the leave-one-out label propagation."""

from __future__ import annotations

import math

import pytest
import torch

from models.base import RecModel
from models.kgnnls import KGNNLS
from tests.models.cases import ITEM_ENTITY, TRAIN, RecModelCase, batch
from tests.models.test_kgcn import naive_kgcn_score


def naive_label(model: KGNNLS, user: int, item: int) -> float:
    """label(e, l): fixed labelled entities keep 1; others take the weighted mean of their neighbours."""
    u = model.user.weight[user]
    target = ITEM_ENTITY[item]
    labelled = {ITEM_ENTITY[i] for v, i in TRAIN if v == user} - {target}

    def label(entity: int, layer: int) -> float:
        if entity in labelled:
            return 1.0
        if layer == 0:
            return 0.5
        slots = [k for k in range(model.k) if bool(model.adj_mask[entity, k])]
        if not slots:
            return label(entity, layer - 1)
        logits = [float(u @ model.relation.weight[model.adj_relation[entity, k]]) / len(u) for k in slots]
        weights = [math.exp(x - max(logits)) for x in logits]
        return sum(w / sum(weights) * label(int(model.adj_entity[entity, k]), layer - 1)
                   for w, k in zip(weights, slots, strict=True))

    return label(target, model.hops)


class TestKGNNLS(RecModelCase):
    name = "kgnnls"
    hyper = {"embedding_dim": 4, "neighbors": 3, "hops": 2, "ls_weight": 0.7}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return naive_kgcn_score(model, user, item)

    @pytest.mark.parametrize("hops", [1, 2, 3])
    def test_label_propagation_matches_reference(self, hops: int) -> None:
        model = self.make(hops=hops)
        with torch.no_grad():
            for user in range(4):
                got = model.propagated_labels(torch.tensor([user] * 3), torch.arange(3))
                expected = [naive_label(model, user, item) for item in range(3)]
                torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-6)

    def test_a_users_other_items_pull_the_label_up(self) -> None:
        """User 0 has items 0 and 1 (entities 3 and 0), which share entity 1: held-out item 0 reads item 1."""
        model = self.make(hops=2, neighbors=4)
        with torch.no_grad():
            assert float(model.propagated_labels(torch.tensor([0]), torch.tensor([0]))[0]) > 0.5
            assert float(model.propagated_labels(torch.tensor([3]), torch.tensor([2]))[0]) == pytest.approx(0.5)

    def test_loss_adds_the_weighted_label_smoothness_term(self) -> None:
        with_ls, without = self.make(ls_weight=1.0), self.make(ls_weight=0.0)
        without.load_state_dict(with_ls.state_dict())
        with torch.no_grad():
            assert float(with_ls.loss(batch())) > float(without.loss(batch()))

