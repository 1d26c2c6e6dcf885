"""KGAT-AX: the holographic fusion against a triple-by-triple reference; with fusion off it is KGAT."""

from __future__ import annotations

import pytest
import torch

from models.base import RecModel
from models.kgat import KGAT
from models.kgatax import KGATAX, attribute_triples, circular_correlation, dft_correlation
from tests.models.cases import RecModelCase, tiny_data
from tests.models.test_kgat import naive_final


def naive_fused(model: KGATAX) -> torch.Tensor:
    """``e + W_f mean(e_r * (e_h ⋆ e_a))`` over each node's auxiliary triples, one triple at a time."""
    e = model.node.weight
    d = e.shape[1]
    sums = torch.zeros_like(e)
    counts = torch.zeros(len(e))
    for h, r, a in zip(model.aux_heads.tolist(), model.aux_relations.tolist(), model.aux_tails.tolist(), strict=True):
        if model.composition == "holographic":
            bound = torch.stack([sum(e[h, i] * e[a, (i + k) % d] for i in range(d)) for k in range(d)])
        else:
            bound = e[a]
        message = model.aux_relation.weight[r] * bound
        for node in (h, a):
            sums[node] += message
            counts[node] += 1
    return e + model.fuse(sums / counts.clamp_min(1)[:, None])


class TestKGATAXHolographic(RecModelCase):
    name = "kgatax"
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3, "layers": [3, 2], "composition": "holographic"}

    def _expected_score(self, model: RecModel, user: int, item: int) -> float:
        return float(naive_final(model, user) @ naive_final(model, int(model.item_node[item])))

    def test_fused_vectors(self) -> None:
        model = self.make()
        with torch.no_grad():
            torch.testing.assert_close(model.base_vectors(), naive_fused(model), rtol=1e-5, atol=1e-6)


class TestKGATAXHadamard(TestKGATAXHolographic):
    hyper = {"embedding_dim": 3, "kg_embedding_dim": 3, "layers": [2], "composition": "hadamard"}


def test_attribute_triples_are_those_whose_tail_is_never_a_head() -> None:
    kg = tiny_data().kg  # tails 1, 2, 4, 6; heads 3, 0, 5, 1, 2: tails 4 and 6 are attribute values
    aux = attribute_triples(kg)
    assert sorted(kg.tails[aux].tolist()) == [4, 4, 6]


def test_without_fusion_it_scores_exactly_as_kgat() -> None:
    data = tiny_data()
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 3, "layers": [3]}
    torch.manual_seed(0)
    kgat = KGAT.from_data(data, **hyper)
    torch.manual_seed(0)
    plain = KGATAX.from_data(data, fusion="none", **hyper)
    kgat.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.score_all(torch.arange(4)), kgat.score_all(torch.arange(4)))


def test_unknown_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="composition"):
        KGATAX.from_data(tiny_data(), composition="concat")
    with pytest.raises(ValueError, match="fusion"):
        KGATAX.from_data(tiny_data(), fusion="sum")


@pytest.mark.parametrize("d", [64, 7])
def test_the_dft_product_form_equals_the_fft_and_has_its_gradients(d: int) -> None:
    """CUDA computes the correlation as products with the real DFT matrices (cuFFT refused the amazon-book scale):
    the same values and gradients as the FFT the CPU runs."""
    gen = torch.Generator().manual_seed(d)
    a = torch.randn(50, d, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(50, d, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(dft_correlation(a, b), circular_correlation(a, b))
    assert torch.autograd.gradcheck(dft_correlation, (a[:4].detach().requires_grad_(), b[:4].detach().requires_grad_()))
