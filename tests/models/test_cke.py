"""CKE: the item vector is the CF offset plus the entity's TransR vector; the joint loss trains both."""

from __future__ import annotations

import pytest
import torch

from models import nn as kgnn
from models.base import RecModel, TripleBatch
from models.cke import CKE
from tests.models.cases import ITEM_ENTITY, RecModelCase, tiny_data, triple_batch


class TestCKE(RecModelCase):
    name = "cke"
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        vector = model.item.weight[item] + model.entity.weight[ITEM_ENTITY[item]]
        return float(model.user.weight[user] @ vector)


def test_kg_loss_is_the_weighted_transr_loss_of_each_triple_against_its_corrupted_tail() -> None:
    torch.manual_seed(0)
    model = CKE.from_data(tiny_data(), embedding_dim=4, kg_embedding_dim=3, kg_weight=0.5, kg_l2=0.0)
    batch = triple_batch(model)
    with torch.no_grad():
        expected = 0.5 * float(torch.stack(_naive_terms(model, batch)).mean())
    assert float(model.kg_loss(batch).detach()) == pytest.approx(expected, rel=1e-5)
    assert batch.neg_heads.equal(batch.heads)  # only tails are corrupted


def _naive_terms(model: CKE, batch: TripleBatch) -> list[torch.Tensor]:
    """softplus(d(h, r, t) - d(h, r, t')) triple by triple."""
    def unit(x: torch.Tensor) -> torch.Tensor:
        return x / x.norm()

    def dist(h: int, r: int, t: int) -> float:
        m = model.relation_matrix.weight[r].view(4, 3)
        e = model.entity.weight
        return float((unit(e[h] @ m) + unit(model.relation.weight[r]) - unit(e[t] @ m)).pow(2).sum())

    quads = zip(batch.heads.tolist(), batch.relations.tolist(), batch.tails.tolist(), batch.neg_tails.tolist(),
                strict=True)
    return [torch.nn.functional.softplus(torch.tensor(dist(h, r, t) - dist(h, r, n))) for h, r, t, n in quads]



def test_transr_distance_normalises_each_projected_vector() -> None:
    """h = e1, r = e2 (unit already): the closest tail direction is e1 + e2, at distance ||e1 + e2 - u||^2."""
    m = torch.eye(3)[None]
    h, r = torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 3.0, 0.0]])
    best = kgnn.transr_distance(h, r, torch.tensor([[5.0, 5.0, 0.0]]), m)
    assert float(best) == pytest.approx(3 - 2 * 2**0.5, rel=1e-6)
    assert float(kgnn.transr_distance(h, r, torch.tensor([[0.0, 0.0, 7.0]]), m)) == pytest.approx(3.0, rel=1e-6)
