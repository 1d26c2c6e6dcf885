"""The shared math of models/nn.py against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from models import nn as kgnn

INF = math.inf
# A 4-node graph, PyG-style: row 0 is the node aggregated into (the segment), row 1 the neighbour.
# Node 0 has three edges, node 1 one, node 2 none, node 3 two.
EDGE_INDEX = torch.tensor([[0, 0, 0, 1, 3, 3], [1, 2, 3, 0, 1, 2]])


def test_scatter_sum_by_hand() -> None:
    src = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0], [6.0, 60.0]])
    out = kgnn.scatter_sum(src, EDGE_INDEX[0], 4)
    assert torch.equal(out, torch.tensor([[6.0, 60.0], [4.0, 40.0], [0.0, 0.0], [11.0, 110.0]]))


def test_scatter_softmax_by_hand() -> None:
    # Node 0: (1, 2, -inf); node 1: a single edge; node 2: empty; node 3: every entry -inf.
    src = torch.tensor([1.0, 2.0, -INF, 5.0, -INF, -INF])
    out = kgnn.scatter_softmax(src, EDGE_INDEX[0], 4)
    e = math.e
    assert not out.isnan().any()
    torch.testing.assert_close(out, torch.tensor([1 / (1 + e), e / (1 + e), 0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(kgnn.scatter_sum(out, EDGE_INDEX[0], 4), torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_scatter_softmax_is_shift_invariant_and_stable_for_large_scores() -> None:
    src = torch.tensor([1000.0, 1001.0, -INF, 5.0, -INF, -INF])
    shifted = torch.tensor([1.0, 2.0, -INF, 5.0, -INF, -INF])
    index = EDGE_INDEX[0]
    torch.testing.assert_close(kgnn.scatter_softmax(src, index, 4), kgnn.scatter_softmax(shifted, index, 4))


def test_scatter_softmax_does_not_depend_on_edge_order() -> None:
    src = torch.tensor([1.0, 2.0, -INF, 5.0, 0.5, -1.0])
    perm = torch.tensor([4, 0, 3, 5, 2, 1])
    index = EDGE_INDEX[0]
    out = kgnn.scatter_softmax(src, index, 4)
    torch.testing.assert_close(kgnn.scatter_softmax(src[perm], index[perm], 4), out[perm])


def test_masked_softmax_equals_scatter_softmax_over_fixed_segments() -> None:
    n, k = 5, 3
    scores = torch.randn(n, k, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[True, True, True], [True, False, True], [False, False, False], [False, True, False],
                         [True, True, False]])
    index = torch.arange(n).repeat_interleave(k)
    expected = kgnn.scatter_softmax(scores.masked_fill(~mask, -INF).reshape(-1), index, n).view(n, k)
    out = kgnn.masked_softmax(scores, mask)
    torch.testing.assert_close(out, expected)
    assert torch.equal(out[2], torch.zeros(k)) and bool((out[~mask] == 0).all())
    # Along another dimension: the same segments laid out as columns.
    torch.testing.assert_close(kgnn.masked_softmax(scores.T, mask.T, dim=0), expected.T)


def test_transe_score_by_hand() -> None:
    h, r, t = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), torch.tensor([4.5, 5.0])
    # h + r - t = (-3, -4)
    assert float(kgnn.transe_score(h, r, t)) == pytest.approx(-5.0)
    assert float(kgnn.transe_score(h, r, t, p=1)) == pytest.approx(-7.0)
    batch = kgnn.transe_score(h.expand(3, 2), r.expand(3, 2), torch.stack([t, h + r, t]))
    torch.testing.assert_close(batch, torch.tensor([-5.0, 0.0, -5.0]))


def test_distmult_score_by_hand() -> None:
    h, r, t = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 0.5, -1.0]), torch.tensor([3.0, 4.0, 1.0])
    assert float(kgnn.distmult_score(h, r, t)) == pytest.approx(6 + 4 - 3)
    assert float(kgnn.distmult_score(h, r, t)) == pytest.approx(float(kgnn.distmult_score(t, r, h)))  # symmetric


def test_complex_score_matches_python_complex_arithmetic() -> None:
    gen = torch.Generator().manual_seed(1)
    h, r, t = (torch.randn(4, 2 * 3, generator=gen, dtype=torch.float64) for _ in range(3))
    out = kgnn.complex_score(h, r, t)
    for b in range(4):
        as_complex = [[complex(float(x[b, i]), float(x[b, i + 3])) for i in range(3)] for x in (h, r, t)]
        expected = sum(hi * ri * ti.conjugate() for hi, ri, ti in zip(*as_complex, strict=True)).real
        assert float(out[b]) == pytest.approx(expected, rel=1e-12)


def test_complex_score_single_coordinate_by_hand() -> None:
    # h = 1 + 2i, r = 3 - i, t = 2 + i: h r = 5 + 5i; (5 + 5i)(2 - i) = 15 + 5i.
    h, r, t = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), torch.tensor([2.0, 1.0])
    assert float(kgnn.complex_score(h, r, t)) == pytest.approx(15.0)


def test_transr_project_by_hand() -> None:
    e = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])  # (2, d_e = 3)
    m = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])  # (d_e, d_r = 2), shared
    torch.testing.assert_close(kgnn.transr_project(e, m), torch.tensor([[4.0, -1.0], [0.0, 1.0]]))
    per_row = torch.stack([m, 2 * m])  # (2, d_e, d_r), one matrix per row
    torch.testing.assert_close(kgnn.transr_project(e, per_row), torch.tensor([[4.0, -1.0], [0.0, 2.0]]))


def test_bpr_loss_by_hand() -> None:
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])
    expected = (math.log(1 + math.exp(-1.0)) + math.log(2.0)) / 2
    assert float(kgnn.bpr_loss(pos, neg)) == pytest.approx(expected)


def test_bpr_loss_over_several_negatives_is_the_mean_over_every_pair() -> None:
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 3.0], [0.0, -1.0]])
    pairs = [(2.0, 1.0), (2.0, 3.0), (0.0, 0.0), (0.0, -1.0)]
    expected = sum(math.log(1 + math.exp(n - p)) for p, n in pairs) / 4
    assert float(kgnn.bpr_loss(pos, neg)) == pytest.approx(expected)
    assert float(kgnn.bpr_loss(pos, neg[:, :1])) == pytest.approx(float(kgnn.bpr_loss(pos, neg[:, 0])))


def test_softmax_loss_by_hand() -> None:
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0, 3.0], [0.0, -1.0]])
    # -log(e^p / (e^p + sum e^n)) at temperature 0.5: every score doubled
    row = lambda p, ns: -math.log(math.exp(2 * p) / (math.exp(2 * p) + sum(math.exp(2 * n) for n in ns)))  # noqa: E731
    expected = (row(2.0, [1.0, 3.0]) + row(0.0, [0.0, -1.0])) / 2
    assert float(kgnn.softmax_loss(pos, neg, temperature=0.5)) == pytest.approx(expected)
    # one negative at temperature 1 is BPR: -log(e^p / (e^p + e^n)) = -log sigmoid(p - n)
    assert float(kgnn.softmax_loss(pos, neg[:, 0])) == pytest.approx(float(kgnn.bpr_loss(pos, neg[:, 0])))


def test_softmax_loss_is_stable_for_large_scores() -> None:
    loss = kgnn.softmax_loss(torch.tensor([100.0]), torch.tensor([[99.0, 100.0]]), temperature=0.1)  # e^1000
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-10) + 1), abs=1e-4)


def test_ranking_loss_names_an_unknown_loss_or_a_bad_temperature() -> None:
    pos, neg = torch.tensor([1.0]), torch.tensor([0.0])
    assert float(kgnn.ranking_loss("bpr", pos, neg)) == float(kgnn.bpr_loss(pos, neg))
    with pytest.raises(ValueError, match=r"cf_loss='hinge'.*bpr, softmax"):
        kgnn.ranking_loss("hinge", pos, neg)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        kgnn.ranking_loss("softmax", pos, neg, temperature=0)


def test_negative_scores_take_one_or_several_negatives_per_user() -> None:
    users = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    several = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, -1.0]], [[5.0, 3.0], [1.0, 1.0], [0.0, 0.0]]])
    assert kgnn.negative_scores(users, several).tolist() == [[3.0, 2.0, -2.0], [3.0, 1.0, 0.0]]
    assert kgnn.negative_scores(users, several[:, 0]).tolist() == [[3.0], [3.0]]


def test_margin_loss_by_hand() -> None:
    pos, neg = torch.tensor([3.0, 1.0, 0.0]), torch.tensor([0.0, 0.5, 2.0])
    # margin 1: max(0, 1 - 3 + 0) = 0, max(0, 1 - 1 + 0.5) = 0.5, max(0, 1 - 0 + 2) = 3
    assert float(kgnn.margin_loss(pos, neg, margin=1.0)) == pytest.approx(3.5 / 3)


def test_bce_loss_by_hand() -> None:
    pos, neg = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    softplus = lambda x: math.log(1 + math.exp(x))  # noqa: E731  -log sigmoid(-x)
    expected = (softplus(-0.0) + softplus(-2.0) + softplus(-1.0)) / 3
    assert float(kgnn.bce_loss(pos, neg)) == pytest.approx(expected)


def test_l2_penalty_by_hand() -> None:
    a = torch.tensor([[1.0, 2.0], [0.0, 3.0]])  # batch of 2, ||a||^2 = 14
    b = torch.tensor([2.0, 0.0, 1.0])  # ||b||^2 = 5
    assert float(kgnn.l2_penalty(a, b)) == pytest.approx((14 + 5) / 2 / 2)
    assert float(kgnn.l2_penalty(a)) == pytest.approx(14 / 2 / 2)


def test_edge_matmul_is_the_scatter_sum_of_weighted_messages_and_has_its_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    src, dst = torch.randint(6, (2, 15), generator=gen)
    src, dst = torch.cat([src, src[:3]]), torch.cat([dst, dst[:3]])  # parallel edges (two relations, one pair)
    weight = torch.rand(18, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.rand(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    edges = kgnn.EdgeIndex(src, dst, 6)
    expected = kgnn.scatter_sum(weight[:, None] * x[src], dst, 6)
    torch.testing.assert_close(kgnn.edge_matmul(weight, edges, x), expected)
    assert torch.autograd.gradcheck(lambda w, v: kgnn.edge_matmul(w, edges, v), (weight, x))


def test_transr_pair_distance_is_two_transr_distances() -> None:
    gen = torch.Generator().manual_seed(1)
    h, t, n = torch.randn(3, 5, 4, generator=gen)
    r, m = torch.randn(5, 3, generator=gen), torch.randn(5, 4, 3, generator=gen)
    pos, neg = kgnn.transr_pair_distance(h, r, t, n, m)
    torch.testing.assert_close(pos, kgnn.transr_distance(h, r, t, m))
    torch.testing.assert_close(neg, kgnn.transr_distance(h, r, n, m))


def test_edge_matmul_reuses_its_matrix_only_while_the_weight_is_unchanged() -> None:
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    edges, weight, x = kgnn.EdgeIndex(src, dst, 3), torch.ones(3), torch.eye(3)
    first = kgnn.edge_matmul(weight, edges, x)
    assert edges.matrix(weight) is edges.matrix(weight)  # the same fixed weight: built once
    weight.mul_(2)  # changed in place (as KGAT's attention at the end of an epoch)
    torch.testing.assert_close(kgnn.edge_matmul(weight, edges, x), 2 * first)
