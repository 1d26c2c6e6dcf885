"""models/evaluation.py on hand-computed cases: realistic ranks, metrics at K, masking, candidates, AUC, F1."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from models.base import RecModel
from models.data import Pairs, RecData
from models.evaluation import (
    auc,
    ctr_metrics,
    f1,
    metrics_from_ranks,
    ranking_metrics,
    ranks_within,
    realistic_rank,
    realistic_ranks,
)
from models.fit import rec_validation, warm_items
from models.pop import Popularity
from models.trainer import TrainConfig
from models.typing import FloatTensor, LongTensor


class _FixedScores(RecModel):
    """A stub recommender whose scores are a given (num_users, num_items) matrix."""

    def __init__(self, scores: FloatTensor) -> None:
        super().__init__(num_users=scores.shape[0], num_items=scores.shape[1])
        self.register_buffer("scores", scores)

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        return self.scores[users, items]

    def score_all(self, users: LongTensor) -> FloatTensor:
        return self.scores[users]


def _pairs(pairs: list[tuple[int, int]]) -> Pairs:
    users, items = zip(*pairs, strict=True)
    return Pairs(torch.tensor(users, dtype=torch.long), torch.tensor(items, dtype=torch.long))


def test_realistic_ranks_average_over_ties() -> None:
    scores = torch.tensor([[3.0, 2.0, 2.0, 1.0], [5.0, 5.0, 5.0, 5.0]])
    targets = torch.tensor([[2.0, 3.0, 1.0], [5.0, 5.0, 5.0]])
    assert realistic_ranks(scores, targets).tolist() == [[2.5, 1.0, 4.0], [2.5, 2.5, 2.5]]


def test_metrics_from_ranks_by_hand() -> None:
    # Rows: targets at ranks 1 and 3; no hit; one target exactly at rank K = 2; one tie straddling K (2.5).
    ranks = torch.tensor([[1.0, 3.0], [5.0, 0.0], [2.0, 0.0], [2.5, 0.0]], dtype=torch.float64)
    valid = torch.tensor([[True, True], [True, False], [True, False], [True, False]])
    expected = {
        "recall@2": [0.5, 0.0, 1.0, 0.0],
        "precision@2": [0.5, 0.0, 0.5, 0.0],
        "hit@2": [1.0, 0.0, 1.0, 0.0],
        "mrr@2": [1.0, 0.0, 0.5, 0.0],
        "ndcg@2": [1 / (1 + 1 / math.log2(3)), 0.0, 1 / math.log2(3), 0.0],
    }
    at2 = metrics_from_ranks(ranks, valid, 2)
    assert at2.keys() == expected.keys()
    for name, values in expected.items():
        assert at2[name].tolist() == pytest.approx(values), name
    at3 = metrics_from_ranks(ranks, valid, 3)
    assert at3["mrr@3"][3] == pytest.approx(1 / 2.5)
    assert at3["ndcg@3"][3] == pytest.approx(1 / math.log2(3.5))
    assert at3["ndcg@3"][0] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


# Users 0..3, items 0..5. User 0's best item (0) is known, so it must neither count nor push the targets
# down; user 1 has no target; user 2's best item (5) is known; user 3 scores everything 0.
SCORES = torch.tensor([[9.0, 5.0, 4.0, 3.0, 2.0, 1.0],
                       [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
TARGETS = _pairs([(0, 1), (0, 3), (2, 0), (3, 2)])
KNOWN = [_pairs([(0, 0), (1, 4), (2, 5), (3, 0)]), _pairs([(3, 1)])]  # train, valid


@pytest.mark.parametrize("batch_users", [1, 2, 256])
def test_ranking_metrics_end_to_end(batch_users: int) -> None:
    # Ranks: user 0 -> 1, 3; user 2 -> 5; user 3 -> four items tied at 0 -> 2.5.
    ideal2 = 1 + 1 / math.log2(3)
    expected = {
        "recall@2": 0.5 / 3, "precision@2": 0.5 / 3, "hit@2": 1 / 3, "mrr@2": 1 / 3, "ndcg@2": 1 / ideal2 / 3,
        "recall@3": 2 / 3, "precision@3": (2 / 3 + 1 / 3) / 3, "hit@3": 2 / 3, "mrr@3": (1 + 0.4) / 3,
        "ndcg@3": ((1 + 1 / math.log2(4)) / ideal2 + 1 / math.log2(3.5)) / 3,
        "users": 3,
    }
    got = ranking_metrics(_FixedScores(SCORES), TARGETS, KNOWN, ks=(2, 3), batch_users=batch_users)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("batch_users", [1, 256])
def test_ranking_metrics_among_candidates_only(batch_users: int) -> None:
    # Candidates 1, 2, 4, 5: user 0's target 3 and user 2's only target are dropped (user 2 no longer counts);
    # user 0's item 1 ranks 1; user 3's item 1 is known, so item 2 ties with 4 and 5 -> rank 2.
    got = ranking_metrics(_FixedScores(SCORES), TARGETS, KNOWN, ks=(2,), candidates=torch.tensor([1, 2, 4, 5]),
                          batch_users=batch_users)
    assert got == pytest.approx({"recall@2": 1.0, "precision@2": 0.5, "hit@2": 1.0, "mrr@2": 0.75,
                                 "ndcg@2": (1 + 1 / math.log2(3)) / 2, "users": 2})


def test_ranking_metrics_leave_the_models_scores_alone() -> None:
    # Popularity's score_all is a view of its counts buffer: masking must not write into it.
    model = Popularity(num_users=2, num_items=4)
    model.counts.copy_(torch.tensor([2.0, 0.0, 1.0, 0.0]))
    known = [_pairs([(0, 0), (1, 0), (1, 2)])]
    # user 0: item 0 masked, target 2 ranks 1; user 1: items 0, 2 masked, target 1 ties with 3 -> 1.5.
    for _ in range(2):
        got = ranking_metrics(model, _pairs([(0, 2), (1, 1)]), known, ks=(2,))
        assert got["recall@2"] == 1.0 and got["mrr@2"] == pytest.approx((1 + 1 / 1.5) / 2)
    assert model.counts.tolist() == [2.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("target", [0, 4, 9])
def test_a_constant_scorer_ranks_in_the_middle(target: int) -> None:
    got = ranking_metrics(_FixedScores(torch.zeros(1, 10)), _pairs([(0, target)]), [], ks=(5, 6))
    assert got["recall@5"] == 0.0 and got["recall@6"] == 1.0  # rank 5.5, wherever the target sits
    assert got["mrr@6"] == pytest.approx(1 / 5.5)


def test_auc_by_hand() -> None:
    t = torch.tensor
    assert auc(t([3.0, 4.0]), t([1.0, 2.0])) == 1.0
    assert auc(t([1.0, 2.0]), t([3.0, 4.0])) == 0.0
    assert auc(t([1.0, 1.0]), t([1.0, 1.0, 1.0])) == 0.5
    # Pairs (pos, neg): (1, 2) 0, (1, 0) 1, (2, 2) 1/2, (2, 0) 1, (3, 2) 1, (3, 0) 1 -> 4.5 / 6.
    assert auc(t([1.0, 2.0, 3.0]), t([2.0, 0.0])) == pytest.approx(0.75)


def test_auc_equals_the_naive_pair_count() -> None:
    gen = torch.Generator().manual_seed(0)
    pos, neg = torch.randint(0, 8, (37,), generator=gen).float(), torch.randint(-2, 6, (29,), generator=gen).float()
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos.tolist(), neg.tolist())]
    assert auc(pos, neg) == pytest.approx(sum(pairs) / len(pairs))


def test_f1_by_hand() -> None:
    pos, neg = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([-0.5, 0.1, -3.0])
    assert f1(pos, neg) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp 3 (0 counts), fp 1, fn 1
    assert f1(pos, neg, threshold=1.0) == pytest.approx(2 / (2 + 0 + 3))  # tp 1, fp 0, fn 3
    assert f1(pos, neg, threshold=5.0) == 0.0


@pytest.mark.parametrize("batch_size", [1, 4096])
def test_ctr_metrics_with_fixed_scores(batch_size: int) -> None:
    scores = torch.tensor([[2.0, -0.5, -1.0, 0.7], [1.0, 0.3, -2.0, 0.3]])
    positives = _pairs([(0, 0), (0, 1), (1, 0), (1, 1)])  # scores 2, -0.5, 1, 0.3
    negatives = torch.tensor([2, 3, 2, 3])  # the same users: scores -1, 0.7, -2, 0.3
    got = ctr_metrics(_FixedScores(scores), positives, negatives, batch_size=batch_size)
    # AUC: 2 and 1 beat every negative (4 + 4), -0.5 beats two (2), 0.3 beats two and ties one (2.5).
    # F1 at logit 0: tp 3 (2, 1, 0.3), fn 1 (-0.5), fp 2 (0.7, 0.3).
    assert got == pytest.approx({"auc": 12.5 / 16, "f1": 6 / (6 + 2 + 1), "pairs": 4})


def test_one_target_rank_agrees_with_the_many_target_ranks_under_ties() -> None:
    scores = torch.randint(0, 4, (6, 9), generator=torch.Generator().manual_seed(0)).float()  # many ties
    target = torch.tensor([0, 3, 8, 1, 1, 5])
    many = realistic_ranks(scores, scores.gather(1, target[:, None]))[:, 0]
    torch.testing.assert_close(realistic_rank(scores, target), many)


def test_the_warm_splits_rank_the_warm_catalogue_only() -> None:
    """A cold-start item (held out whole) is no candidate of the valid/test ranking, whatever its score; it is the
    only kind of candidate of the cold split. An item no one interacted with stays a warm candidate."""
    splits = {"train": _pairs([(0, 0), (1, 1)]), "valid": _pairs([(0, 1)]), "test": _pairs([(1, 2)]),
              "cold_test": _pairs([(0, 3), (1, 3)])}
    data = RecData(num_users=2, num_items=5, splits=splits, kg=None, entity_ids=torch.arange(0),  # type: ignore[arg-type]
                   relation_ids=torch.arange(0))
    assert warm_items(data).tolist() == [0, 1, 2, 4]  # item 4: no interaction anywhere, still warm
    # the cold item 3 scores highest for both users, item 4 second for user 1, the targets next
    model = _FixedScores(torch.tensor([[0.0, 2.0, 1.0, 9.0, 0.5], [0.0, 0.0, 5.0, 9.0, 6.0]]))
    config = TrainConfig(device="cpu")
    test = rec_validation(data, "ranking", "test", config)(model)
    assert test["mrr@20"] == pytest.approx(1 / 2)  # user 1: item 4 above its target, the cold item not counted
    valid = rec_validation(data, "ranking", "valid", config)(model)
    assert valid["mrr@20"] == pytest.approx(1.0)
    cold = rec_validation(data, "ranking", "cold_test", config)(model)
    assert cold["mrr@20"] == pytest.approx(1.0) and cold["users"] == 2


@pytest.mark.parametrize("k", [1, 3, 20, 60])
def test_ranks_within_the_top_k_equal_the_full_sort(k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    scores = torch.randint(0, 6, (40, 50), generator=gen).float()  # many ties, at the k-th place too
    scores[:, :5] = -math.inf  # masked items
    targets = scores.gather(1, torch.randint(0, 50, (40, 7), generator=gen))
    full = realistic_ranks(scores, targets)
    got = ranks_within(scores, targets, k)
    within = full <= k
    assert torch.equal(got[within], full[within])
    beyond = got[~within]  # inf, or the exact rank of a target tied with the k-th score
    assert bool((torch.isinf(beyond) | (beyond == full[~within])).all()) and bool((beyond > k).all())
    assert torch.equal(metrics_from_ranks(got, torch.ones_like(within), k)["ndcg@" + str(k)],
                       metrics_from_ranks(full, torch.ones_like(within), k)["ndcg@" + str(k)])
