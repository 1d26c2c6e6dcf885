"""TransE, TransR, DistMult and ComplEx, and filtered link prediction.

Each model: shapes, a finite loss, gradients on every parameter, ``score_t``/``score_h`` agreeing with
``score_hrt``, a naive reference score (``_expected_score``) on a tiny hand-built graph, and a short seeded
training run that lifts the filtered MRR of held-out triples of a clustered KG well above the untrained one.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from models.base import KGEModel, TripleBatch
from models.complex import ComplEx
from models.distmult import DistMult
from models.linkpred import link_prediction
from models.transe import TransE
from models.transr import TransR
from models.typing import FloatTensor, LongTensor

NUM_ENTITIES, NUM_RELATIONS = 5, 2
# The tiny graph: a 5-cycle, relation 0 on the first three edges and relation 1 on the last two.
TRIPLES = [(0, 0, 1), (1, 0, 2), (2, 0, 3), (3, 1, 4), (4, 1, 0)]
ENTITIES = [[0.5, -1.0, 0.25, 0.0], [1.0, 0.5, -0.5, 0.25], [0.0, 0.25, 1.0, -0.5],
            [-0.5, 0.0, 0.5, 1.0], [0.25, 0.25, 0.0, -0.25]]
RELATIONS = [[0.5, 0.0, -0.5, 1.0], [-0.25, 0.5, 0.25, 0.0]]
RELATIONS_3D = [[0.5, 0.0, -0.5], [-0.25, 1.0, 1.0]]  # TransR's relation space has 3 dimensions
MATRICES = [[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0], [0.0, -0.5, 0.0]],
            [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.5, 0.5, 0.5]]]  # (2, 4, 3)

CASES = {
    "transe": (TransE, {"embedding_dim": 4}),
    "transe_l1": (TransE, {"embedding_dim": 4, "p": 1, "l2": 0.1}),
    "transr": (TransR, {"entity_dim": 4, "relation_dim": 3, "l2": 0.1}),
    "distmult": (DistMult, {"embedding_dim": 4}),
    "complex": (ComplEx, {"embedding_dim": 2}),
}


def _make(name: str, **overrides: int | float) -> KGEModel:
    cls, kwargs = CASES[name]
    return cls(num_entities=NUM_ENTITIES, num_relations=NUM_RELATIONS, **(kwargs | overrides))


def _tensors(triples: list[tuple[int, int, int]]) -> tuple[LongTensor, LongTensor, LongTensor]:
    h, r, t = torch.tensor(triples).T.contiguous()
    return h, r, t


def _batch() -> TripleBatch:
    h, r, t = _tensors(TRIPLES)
    return TripleBatch(h, r, t, neg_heads=torch.tensor([3, 1, 4, 3, 0]), neg_tails=torch.tensor([1, 4, 3, 0, 0]))


def _set_weights(model: KGEModel) -> None:
    with torch.no_grad():
        model.entity_emb.weight.copy_(torch.tensor(ENTITIES))
        model.relation_emb.weight.copy_(torch.tensor(RELATIONS_3D if isinstance(model, TransR) else RELATIONS))
        if isinstance(model, TransR):
            model.relation_matrix.weight.copy_(torch.tensor(MATRICES).flatten(1))


def _clamp(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / max(norm, 1.0) for x in v]


def _expected_score(name: str, h: int, r: int, t: int) -> float:
    """The score of (h, r, t) under ENTITIES / RELATIONS / MATRICES, computed naively in Python."""
    eh, et = ENTITIES[h], ENTITIES[t]
    if name in ("transe", "transe_l1"):
        p = 1 if name == "transe_l1" else 2
        return -sum(abs(a + b - c) ** p for a, b, c in zip(eh, RELATIONS[r], et, strict=True)) ** (1 / p)
    if name == "transr":
        m = MATRICES[r]
        h_r = _clamp([sum(x * m[i][j] for i, x in enumerate(_clamp(eh))) for j in range(3)])
        t_r = _clamp([sum(x * m[i][j] for i, x in enumerate(_clamp(et))) for j in range(3)])
        rel = _clamp(RELATIONS_3D[r])
        return -math.sqrt(sum((a + b - c) ** 2 for a, b, c in zip(h_r, rel, t_r, strict=True)))
    if name == "distmult":
        return sum(a * b * c for a, b, c in zip(eh, RELATIONS[r], et, strict=True))
    hc, rc, tc = ([complex(v[i], v[i + 2]) for i in range(2)] for v in (eh, RELATIONS[r], et))
    return sum(a * b * c.conjugate() for a, b, c in zip(hc, rc, tc, strict=True)).real


@pytest.mark.parametrize("name", CASES)
def test_shapes(name: str) -> None:
    model = _make(name)
    h, r, t = _tensors(TRIPLES)
    assert model.score_hrt(h, r, t).shape == (5,)
    assert model.score_t(h, r).shape == (5, NUM_ENTITIES)
    assert model.score_h(r, t).shape == (5, NUM_ENTITIES)


@pytest.mark.parametrize("name", CASES)
def test_loss_is_finite_and_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = _make(name)
    loss = model.loss(_batch())
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", CASES)
def test_score_t_and_score_h_agree_with_score_hrt(name: str) -> None:
    torch.manual_seed(0)
    model = _make(name)
    h, r, t = (x.flatten() for x in torch.meshgrid(torch.arange(5), torch.arange(2), torch.arange(5), indexing="ij"))
    expected = model.score_hrt(h, r, t)  # (50,)
    rows = torch.arange(len(h))
    torch.testing.assert_close(model.score_t(h, r)[rows, t], expected)
    torch.testing.assert_close(model.score_h(r, t)[rows, h], expected)


@pytest.mark.parametrize("name", CASES)
def test_reference_score(name: str) -> None:
    model = _make(name)
    _set_weights(model)
    combos = list(itertools.product(range(NUM_ENTITIES), range(NUM_RELATIONS), range(NUM_ENTITIES)))
    expected = torch.tensor([_expected_score(name, *combo) for combo in combos])
    torch.testing.assert_close(model.score_hrt(*_tensors(combos)), expected)


def test_transe_renormalises_entities_each_epoch() -> None:
    model = _make("transe")
    _set_weights(model)
    model.on_epoch_start(torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.entity_emb.weight.norm(dim=-1), torch.ones(NUM_ENTITIES))


def _cluster_kg() -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """4 clusters of 6 entities; cluster c links all its ordered pairs (self-loops too) by relation c % 2.

    Returns (train, held_out): a seeded fifth of the 144 triples is held out.
    """
    triples = [(6 * c + i, c % 2, 6 * c + j) for c in range(4) for i in range(6) for j in range(6)]
    order = torch.randperm(len(triples), generator=torch.Generator().manual_seed(0)).tolist()
    held = set(order[: len(triples) // 5])
    return ([x for k, x in enumerate(triples) if k not in held], [x for k, x in enumerate(triples) if k in held])


def _train(model: KGEModel, triples: tuple[LongTensor, LongTensor, LongTensor], epochs: int, lr: float) -> None:
    """Full-batch Adam; each triple gets one negative with its head or tail replaced uniformly."""
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    h, r, t = triples
    for _ in range(epochs):
        model.on_epoch_start(generator)
        corrupt_head = torch.rand(len(h), generator=generator) < 0.5  # (B,)
        random = torch.randint(model.num_entities, (len(h),), generator=generator)  # (B,)
        batch = TripleBatch(h, r, t, torch.where(corrupt_head, random, h), torch.where(corrupt_head, t, random))
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()


@pytest.mark.parametrize("name", ["transe", "transr", "distmult", "complex"])
def test_training_lifts_filtered_mrr(name: str) -> None:
    train, held_out = _cluster_kg()
    known = _tensors(train + held_out)
    cls = CASES[name][0]
    dims = {"entity_dim": 16, "relation_dim": 16} if cls is TransR else {"embedding_dim": 16}
    torch.manual_seed(0)
    model = cls(num_entities=24, num_relations=2, **dims)
    before = link_prediction(model, _tensors(held_out), known)["mrr"]
    _train(model, _tensors(train), epochs=100, lr=0.05)
    after = link_prediction(model, _tensors(held_out), known)["mrr"]
    assert after > 0.8 and after > before + 0.4, (before, after)


class _FixedScores(KGEModel):
    """A stub whose tail scores depend only on h and head scores only on t."""

    def __init__(self, tail_scores: FloatTensor, head_scores: FloatTensor) -> None:
        super().__init__(num_entities=tail_scores.shape[1], num_relations=1)
        self.tail_scores, self.head_scores = tail_scores, head_scores

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        return self.tail_scores[h]

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        return self.head_scores[t]


@pytest.mark.parametrize(("batch_size", "dtype"), [(1, torch.int64), (256, torch.int64), (256, torch.int32)])
def test_link_prediction_hand_computed(batch_size: int, dtype: torch.dtype) -> None:
    tail_scores = torch.tensor([[1.0, 0.5, 3.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]])  # row h: scores of tails
    head_scores = torch.tensor([[0.0, 0.0, 0.0], [0.7, 0.7, 5.0], [0.0, 0.0, 0.0]])  # row t: scores of heads
    model = _FixedScores(tail_scores, head_scores)
    test = tuple(x.to(dtype) for x in _tensors([(0, 0, 1), (2, 0, 1)]))
    known = tuple(x.to(dtype) for x in _tensors([(0, 0, 1), (0, 0, 2), (2, 0, 1)]))
    # (0, 0, ?): tail 2 is known (-inf), tail 0 scores above 1 -> rank 2.
    # (2, 0, ?): nothing else known, a three-way tie -> (1 + 3) / 2 = 2.
    # (?, 0, 1) for head 0: head 2 is known (-inf), head 1 ties -> (1 + 2) / 2 = 1.5.
    # (?, 0, 1) for head 2: head 0 is known (-inf), head 1 is lower -> rank 1.
    ranks = [2.0, 2.0, 1.5, 1.0]
    metrics = link_prediction(model, test, known, batch_size=batch_size)
    assert metrics == pytest.approx({
        "mrr": sum(1 / x for x in ranks) / 4,
        "hits@1": 0.25,
        "hits@3": 1.0,
        "hits@10": 1.0,
        "mean_rank": sum(ranks) / 4,
    })


def test_link_prediction_without_filtering_counts_other_answers() -> None:
    model = _FixedScores(torch.tensor([[1.0, 0.5, 3.0]] * 3), torch.tensor([[0.7, 0.7, 5.0]] * 3))
    test = _tensors([(0, 0, 1)])
    # Only the test triple is known: tail 1 ranks 3 (below 3.0 and 1.0); head 0 ranks (2 + 3) / 2 = 2.5.
    assert link_prediction(model, test, test)["mean_rank"] == pytest.approx((3 + 2.5) / 2)
