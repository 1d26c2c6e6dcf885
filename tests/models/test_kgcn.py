"""KGCN (and KGNN-LS's scorer): a naive recursive reference of the aggregation, per user and item."""

from __future__ import annotations

import math

import torch

from models import nn as kgnn
from models.base import RecModel
from models.kgcn import KGCN, _weighted_sum
from tests.models.cases import ITEM_ENTITY, RecModelCase, tiny_data


def naive_kgcn_score(model: KGCN, user: int, item: int) -> float:
    """``<u, v^u>`` with v^u computed by recursion over the sampled neighbours, entity by entity."""
    u = model.user.weight[user]

    def vector(entity: int, layer: int) -> torch.Tensor:
        if layer == 0:
            return model.entity.weight[entity]
        own = vector(entity, layer - 1)
        slots = [k for k in range(model.k) if bool(model.adj_mask[entity, k])]
        logits = [float(u @ model.relation.weight[model.adj_relation[entity, k]]) / len(u) for k in slots]
        top = max(logits, default=0.0)
        weights = [math.exp(x - top) for x in logits]
        total = sum(weights)
        neighbourhood = sum((w / total * vector(int(model.adj_entity[entity, k]), layer - 1)
                             for w, k in zip(weights, slots, strict=True)), torch.zeros_like(own)) / model.k
        agg = model.layers[layer - 1]
        x = {"sum": lambda: own + neighbourhood, "concat": lambda: torch.cat([own, neighbourhood]),
             "neighbor": lambda: neighbourhood}[agg.kind]()
        out = agg.linear(x)
        return torch.tanh(out) if layer == model.hops else torch.relu(out)

    return float(u @ vector(ITEM_ENTITY[item], model.hops))


class TestKGCNSum(RecModelCase):
    name = "kgcn"
    hyper = {"embedding_dim": 4, "neighbors": 2, "hops": 1, "aggregator": "sum"}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return naive_kgcn_score(model, user, item)


class TestKGCNConcatTwoHops(TestKGCNSum):
    hyper = {"embedding_dim": 4, "neighbors": 3, "hops": 2, "aggregator": "concat"}


class TestKGCNNeighborTwoHops(TestKGCNSum):
    hyper = {"embedding_dim": 3, "neighbors": 2, "hops": 2, "aggregator": "neighbor"}


def test_neighbourhood_softmax_is_the_segment_softmax_over_the_edge_index() -> None:
    """The (..., K) softmax + weighted sum equals scatter_softmax + scatter_sum over the flat edge index."""
    torch.manual_seed(0)
    model = KGCN.from_data(tiny_data(), embedding_dim=4, neighbors=3, hops=1)
    u = model.user.weight[:2]  # (2, d)
    items = torch.tensor([[0], [2]])
    entities, relations, masks = model.receptive_field(items)
    dense = model.neighbour_weights(u, relations, masks)[0]  # (2, 1, K)
    src = (model.relation(relations[0]) * u[:, None]).mean(-1).flatten()  # (2 K,)
    src = src.masked_fill(~masks[0].flatten(), float("-inf"))
    index = torch.arange(2).repeat_interleave(3)
    torch.testing.assert_close(dense.flatten(), kgnn.scatter_softmax(src, index, 2))
    children = model.entity(entities[1]).reshape(-1, 4)  # (2 K, d)
    expected = kgnn.scatter_sum(dense.flatten()[:, None] * children, index, 2) / 3  # the mean over K
    got = _weighted_sum(dense, children.view(2, 3, 4), 3)[:, 0]
    torch.testing.assert_close(got, expected)


def test_isolated_entity_gets_an_empty_neighbourhood() -> None:
    """Entity 6 has one neighbour (5); an entity with none would have every slot masked."""
    data = tiny_data(triples=[(3, 0, 1)])  # items 1 and 2 (entities 0, 5) have no triple
    model = KGCN.from_data(data, embedding_dim=4, neighbors=2)
    assert not bool(model.adj_mask[0].any()) and not bool(model.adj_mask[5].any())
    assert bool(model.adj_mask[3].all())
    assert torch.isfinite(model.score_all(torch.arange(4))).all()


def test_sampling_is_seeded() -> None:
    a = KGCN.from_data(tiny_data(), neighbors=2, seed=1)
    b = KGCN.from_data(tiny_data(), neighbors=2, seed=1)
    assert torch.equal(a.adj_entity, b.adj_entity) and torch.equal(a.adj_relation, b.adj_relation)
