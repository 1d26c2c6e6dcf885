"""KGAT: a naive per-node reference of the attention and the propagation, and its once-per-epoch attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.base import RecModel
from models.kgat import KGAT, LEAKY_SLOPE
from tests.models.cases import RecModelCase, batch, tiny_data, triple_batch


def naive_attention(model: KGAT) -> dict[int, float]:
    """``pi(h, r, t)`` softmaxed over each head's edges, edge by edge: {edge position: weight}."""
    e, heads = model.base_vectors(), model.ckg.heads.tolist()  # e^(0) (KGAT-AX: the fused vectors)
    logits = {}
    for pos, (h, r, t) in enumerate(zip(heads, model.ckg.relations.tolist(), model.ckg.tails.tolist(), strict=True)):
        w = model.relation_matrix.weight[r].view(model.dim, model.kg_dim)
        logits[pos] = float((e[t] @ w) @ torch.tanh(e[h] @ w + model.relation.weight[r]))
    weights = {}
    for head in set(heads):
        mine = [p for p in logits if heads[p] == head]
        top = max(logits[p] for p in mine)
        total = sum(math.exp(logits[p] - top) for p in mine)
        weights |= {p: math.exp(logits[p] - top) / total for p in mine}
    return weights


def naive_final(model: KGAT, node: int) -> torch.Tensor:
    """The concatenated layer outputs of one node, by recursion over its edges (eval mode: no dropout)."""
    attention = naive_attention(model)
    base = model.base_vectors()
    edges = list(zip(model.ckg.heads.tolist(), model.ckg.tails.tolist(), strict=True))

    def vector(n: int, layer: int) -> torch.Tensor:
        if layer == 0:
            return base[n]
        own = vector(n, layer - 1)
        side = sum((attention[p] * vector(t, layer - 1) for p, (h, t) in enumerate(edges) if h == n),
                   torch.zeros_like(own))
        agg = model.layers[layer - 1]
        act = lambda x: F.leaky_relu(x, LEAKY_SLOPE)  # noqa: E731
        if agg.kind == "bi":
            return act(agg.linear(own + side)) + act(agg.bi(own * side))
        if agg.kind == "gcn":
            return act(agg.linear(own + side))
        return act(agg.linear(torch.cat([own, side])))

    parts = [vector(node, 0)] + [F.normalize(vector(node, layer), dim=0) for layer in range(1, len(model.layers) + 1)]
    return torch.cat(parts)


class TestKGATBi(RecModelCase):
    name = "kgat"
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3, "layers": [3, 2], "aggregator": "bi"}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return float(naive_final(model, user) @ naive_final(model, int(model.item_node[item])))


class TestKGATGCN(TestKGATBi):
    hyper = {"embedding_dim": 3, "kg_embedding_dim": 2, "layers": [3], "aggregator": "gcn"}


class TestKGATGraphSage(TestKGATBi):
    hyper = {"embedding_dim": 3, "kg_embedding_dim": 3, "layers": [2, 2], "aggregator": "graphsage"}


def test_attention_changes_only_when_the_epoch_ends() -> None:
    torch.manual_seed(0)
    model = KGAT.from_data(tiny_data(), embedding_dim=4, kg_embedding_dim=3, layers=[3])
    assert bool(torch.isnan(model.attention).all())  # computed on first use
    model.ensure_attention()
    before = model.attention.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    (model.loss(batch()) + model.kg_loss(triple_batch(model))).backward()
    optimizer.step()
    assert torch.equal(model.attention, before)  # held fixed within the epoch, and gets no gradient
    model.on_epoch_end()
    assert not torch.allclose(model.attention, before)
    heads = model.ckg.heads
    sums = torch.zeros(model.ckg.num_nodes).index_add_(0, heads, model.attention)
    assert torch.allclose(sums[torch.unique(heads)], torch.ones(len(torch.unique(heads))))


def test_evaluation_reuses_the_propagation_until_the_weights_change() -> None:
    torch.manual_seed(0)
    model = KGAT.from_data(tiny_data(), embedding_dim=4, kg_embedding_dim=3, layers=[3])
    model.eval()
    with torch.no_grad():
        first = model.score_all(torch.arange(2))
        state = {k: v + 0.1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
        model.load_state_dict(state)
        assert not torch.allclose(model.score_all(torch.arange(2)), first)  # the cache was dropped


def test_an_unknown_aggregator_or_empty_layers_are_rejected() -> None:
    with pytest.raises(ValueError, match="aggregator"):
        KGAT.from_data(tiny_data(), aggregator="mean")
    with pytest.raises(ValueError, match="layers"):
        KGAT.from_data(tiny_data(), layers=[])
