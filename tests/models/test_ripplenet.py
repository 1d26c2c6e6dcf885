"""RippleNet: a naive reference over the memories, and the ripple sets' structure."""

from __future__ import annotations

import math

import pytest
import torch

from models.base import RecModel
from models.graph import ripple_sets
from tests.models.cases import ITEM_ENTITY, TRAIN, TRIPLES, RecModelCase, batch, tiny_data


class TestRippleNet(RecModelCase):
    name = "ripplenet"
    hyper = {"embedding_dim": 3, "hops": 2, "memory": 4}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        d = model.dim
        v = model.entity.weight[ITEM_ENTITY[item]]
        u = torch.zeros(d)
        for hop in range(model.hops):
            logits, tails = [], []
            for m in range(model.memory_heads.shape[-1]):
                if not bool(model.memory_mask[user, hop, m]):
                    continue
                h = model.entity.weight[model.memory_heads[user, hop, m]]
                r = model.relation.weight[model.memory_relations[user, hop, m]].view(d, d)
                logits.append(float(v @ (r @ h)))
                tails.append(model.entity.weight[model.memory_tails[user, hop, m]])
            o = torch.zeros(d)
            if logits:
                weights = [math.exp(x - max(logits)) for x in logits]
                o = sum((w / sum(weights) * t for w, t in zip(weights, tails, strict=True)), torch.zeros(d))
            v = model.transform(v + o)
            u = u + o
        return float(u @ v)

    def test_kge_term_sums_each_hops_mean_over_its_memories(self) -> None:
        with_kge, without = self.make(kge_weight=1.0, l2=0.0), self.make(kge_weight=0.0, l2=0.0)
        b = batch()
        expected = 0.0
        for hop in range(with_kge.hops):
            values = []
            for user in b.users.tolist():
                for m in range(with_kge.memory_heads.shape[-1]):
                    if bool(with_kge.memory_mask[user, hop, m]):
                        d = with_kge.dim
                        h = with_kge.entity.weight[with_kge.memory_heads[user, hop, m]]
                        r = with_kge.relation.weight[with_kge.memory_relations[user, hop, m]].view(d, d)
                        t = with_kge.entity.weight[with_kge.memory_tails[user, hop, m]]
                        values.append(torch.sigmoid(t @ (r @ h)).detach())
            expected += float(torch.stack(values).mean()) if values else 0.0
        with torch.no_grad():
            assert float(without.loss(b) - with_kge.loss(b)) == pytest.approx(expected, rel=1e-5)


def test_ripple_memories_spread_from_the_users_items() -> None:
    data = tiny_data()
    sets = ripple_sets(data.kg, data.train.users, data.train.items, 4, hops=2, memory=5,
                       generator=torch.Generator().manual_seed(3))
    triples = set(TRIPLES)
    for user in range(4):
        seeds = {ITEM_ENTITY[i] for v, i in TRAIN if v == user}
        for hop in range(2):
            drawn = [(int(sets.heads[user, hop, m]), int(sets.relations[user, hop, m]), int(sets.tails[user, hop, m]))
                     for m in range(5) if bool(sets.mask[user, hop, m])]
            assert all(t in triples and t[0] in seeds for t in drawn)
            reachable = [t for t in triples if t[0] in seeds]
            assert bool(drawn) == bool(reachable)
            seeds = {t[2] for t in drawn}


def test_ripple_sets_are_seeded_and_cover_the_candidates() -> None:
    data = tiny_data()
    make = lambda seed: ripple_sets(data.kg, data.train.users, data.train.items, 4, 1, 64,  # noqa: E731
                                    torch.Generator().manual_seed(seed))
    assert torch.equal(make(0).tails, make(0).tails)
    user0 = {(int(h), int(t)) for h, t in zip(make(1).heads[0, 0], make(1).tails[0, 0], strict=True)}
    assert user0 == {(3, 1), (3, 2), (0, 1)}  # user 0's items are entities 3 and 0: all 3 out-triples drawn
