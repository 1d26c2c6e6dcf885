"""KGIF: dynamic projections and the self-attention fusion against an edge-by-edge reference; with both parts off
it is KGAT."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.base import RecModel
from models.kgat import KGAT, LEAKY_SLOPE
from models.kgif import KGIF
from tests.models.cases import RecModelCase, batch, tiny_data, triple_batch


def naive_projection(model: KGIF, e: torch.Tensor, node: int, r: int) -> torch.Tensor:
    if model.projection == "matrix":
        return e @ model.relation_matrix.weight[r].view(model.dim, model.kg_dim)
    return e + (model.node_projection.weight[node] @ e) * model.relation_projection.weight[r]


def naive_attention(model: KGIF) -> list[float]:
    e = model.node.weight
    heads, relations, tails = model.ckg.heads.tolist(), model.ckg.relations.tolist(), model.ckg.tails.tolist()
    logits = [float(naive_projection(model, e[t], t, r) @ torch.tanh(naive_projection(model, e[h], h, r)
                                                                     + model.relation.weight[r]))
              for h, r, t in zip(heads, relations, tails, strict=True)]
    out = []
    for i, h in enumerate(heads):
        mine = [logits[j] for j, g in enumerate(heads) if g == h]
        out.append(math.exp(logits[i]) / sum(math.exp(x) for x in mine))
    return out


def naive_final(model: KGIF, node: int) -> torch.Tensor:
    attention = naive_attention(model)
    edges = list(zip(model.ckg.heads.tolist(), model.ckg.relations.tolist(), model.ckg.tails.tolist(), strict=True))
    act = lambda x: F.leaky_relu(x, LEAKY_SLOPE)  # noqa: E731

    def vector(n: int, layer: int) -> torch.Tensor:
        if layer == 0:
            return model.node.weight[n]
        own = vector(n, layer - 1)
        side = torch.zeros_like(own)
        for i, (h, r, t) in enumerate(edges):
            if h != n:
                continue
            tail = vector(t, layer - 1)
            if model.fusion:
                fuser = model.fusers[layer - 1]
                tokens = torch.stack([vector(h, layer - 1), model.layer_relations[layer - 1].weight[r], tail])
                q, k, v = fuser.q(tokens[2]), fuser.k(tokens), fuser.v(tokens)
                weights = torch.softmax(k @ q / math.sqrt(len(q)), dim=0)
                message = weights @ v + tail
            else:
                message = tail
            side = side + attention[i] * message
        agg = model.layers[layer - 1]
        return act(agg.linear(own + side)) + act(agg.bi(own * side))

    return torch.cat([vector(node, 0)] + [F.normalize(vector(node, layer), dim=0)
                                         for layer in range(1, len(model.layers) + 1)])


class TestKGIF(RecModelCase):
    name = "kgif"
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 4, "layers": [3, 2]}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return float(naive_final(model, user) @ naive_final(model, int(model.item_node[item])))


class TestKGIFMatrixProjection(TestKGIF):
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3, "layers": [3], "projection": "matrix"}


class TestKGIFWithoutFusion(TestKGIF):
    hyper = {"embedding_dim": 3, "kg_embedding_dim": 3, "layers": [2], "fusion": False}


def test_with_both_parts_off_it_is_kgat() -> None:
    data = tiny_data()
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3, "layers": [3]}
    torch.manual_seed(0)
    kgat = KGAT.from_data(data, **hyper)
    torch.manual_seed(0)
    plain = KGIF.from_data(data, projection="matrix", fusion=False, **hyper)
    for model in (kgat, plain):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.score_all(torch.arange(4)), kgat.score_all(torch.arange(4)))
    triples = triple_batch(kgat)
    torch.testing.assert_close(plain.kg_loss(triples), kgat.kg_loss(triples))
    torch.testing.assert_close(plain.loss(batch()), kgat.loss(batch()))


def test_dynamic_projection_needs_equal_sizes_and_a_known_name() -> None:
    with pytest.raises(ValueError, match="kg_embedding_dim == embedding_dim"):
        KGIF.from_data(tiny_data(), embedding_dim=4, kg_embedding_dim=3)
    with pytest.raises(ValueError, match="projection"):
        KGIF.from_data(tiny_data(), projection="transh")
