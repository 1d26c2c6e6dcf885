"""Shared checks for recommenders, PyKEEN-style: a test class sets ``name`` and ``hyper`` and inherits
shape, loss, gradient and ``score_all``/``score`` agreement tests; it adds ``_expected_score`` (a naive
reference computation on :func:`tiny_data`, a hand-built 7-entity graph).
"""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl
import pytest
import torch

from models import MODELS
from models.base import InteractionBatch, RecModel, TripleBatch
from models.data import RecData, from_tables
from models.sampling import triple_batches

NUM_USERS = 4
# items 0, 1, 2 are entities 3, 0, 5 (not the first entities, on purpose); entity 6 has no triple.
ITEM_ENTITY = [3, 0, 5]
TRIPLES = [(3, 0, 1), (3, 1, 2), (0, 0, 1), (5, 1, 2), (1, 0, 4), (2, 1, 4), (5, 0, 6)]
TRAIN = [(0, 0), (0, 1), (1, 2), (2, 0), (3, 1)]
VALID = [(1, 0)]
TEST = [(2, 1), (3, 2)]


def tiny_data(triples: list[tuple[int, int, int]] = TRIPLES) -> RecData:
    """Users 0..3, items 0..2 on entities 3, 0, 5 of a 7-entity, 2-relation graph."""
    splits = [(u, i, s) for s, pairs in [("train", TRAIN), ("valid", VALID), ("test", TEST)] for u, i in pairs]
    return from_tables(
        entities=pl.DataFrame({"entity_id": range(7), "retired": [False] * 7}),
        relations=pl.DataFrame({"relation_id": [0, 1], "retired": [False, False]}),
        triples=pl.DataFrame(triples, schema=["head_id", "relation_id", "tail_id"], orient="row"),
        item_entity=pl.DataFrame({"item_index": [0, 1, 2], "entity_id": ITEM_ENTITY}),
        users=pl.DataFrame({"user_index": range(NUM_USERS)}),
        splits=pl.DataFrame(splits, schema=["user_index", "item_index", "split"], orient="row"),
    )


def batch() -> InteractionBatch:
    return InteractionBatch(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 2, 0, 1]), torch.tensor([2, 1, 1, 0]))


def triple_batch(model: RecModel) -> TripleBatch:
    """Every triple ``model`` trains its KG loss on, tails corrupted (seeded)."""
    kg = model.kg_triples()
    return next(triple_batches(kg, kg.num_triples, torch.Generator().manual_seed(0), corrupt="tail"))


class RecModelCase:
    name: ClassVar[str]
    hyper: ClassVar[dict[str, Any]] = {}

    def make(self, **overrides: Any) -> RecModel:
        torch.manual_seed(0)
        return MODELS[self.name].from_data(tiny_data(), **(self.hyper | overrides))

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        raise NotImplementedError

    def test_shapes(self) -> None:
        model = self.make()
        users = torch.tensor([0, 1, 3])
        assert model.score(users, torch.tensor([0, 2, 1])).shape == (3,)
        assert model.score_all(users).shape == (3, model.num_items)

    def test_loss_is_finite_and_reaches_every_parameter(self) -> None:
        model = self.make()
        loss = model.loss(batch())
        if model.kg_phase is not None:  # the KG loss trains the relation vectors and matrices
            loss = loss + model.kg_loss(triple_batch(model))
        assert loss.dim() == 0 and torch.isfinite(loss)
        if not model.trainable:
            assert not list(model.parameters())
            return
        loss.backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert not dead, f"no gradient reaches {dead}"

    def test_score_all_equals_score(self) -> None:
        model = self.make()
        model.loss(batch())  # count-based models learn here
        model.eval()
        users = torch.arange(NUM_USERS)
        grid = model.score(users.repeat_interleave(model.num_items), torch.arange(model.num_items).repeat(NUM_USERS))
        torch.testing.assert_close(model.score_all(users), grid.view(NUM_USERS, -1), rtol=1e-5, atol=1e-6)

    def test_reference_score(self) -> None:
        model = self.make()
        model.loss(batch())
        model.eval()
        with torch.no_grad():
            for user in range(NUM_USERS):
                for item in range(model.num_items):
                    got = float(model.score(torch.tensor([user]), torch.tensor([item]))[0])
                    assert got == pytest.approx(self._expected_score(model, user, item), rel=1e-5, abs=1e-6)
