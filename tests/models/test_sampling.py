"""models/sampling.py: pair lookups, negative sampling and the epoch batch iterators."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from models.graph import KnowledgeGraph
from models.sampling import (
    NegativeSampler,
    PairSet,
    interaction_batches,
    joint_batches,
    num_batches,
    triple_batches,
)

NUM_ITEMS = 6
USERS = torch.tensor([0, 0, 1, 2, 2, 2, 0])  # (0, 1) appears twice
ITEMS = torch.tensor([1, 3, 0, 5, 4, 2, 1])


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_pair_set_contains() -> None:
    pairs = PairSet(USERS, ITEMS, NUM_ITEMS)
    assert len(pairs.keys) == 6  # the repeated pair counts once
    users, items = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3]), torch.tensor([1, 3, 0, 0, 1, 5, 3, 0])
    assert pairs.contains(users, items).tolist() == [True, True, False, True, False, True, False, False]
    assert pairs.contains(torch.tensor([5]), torch.tensor([5])).tolist() == [False]  # beyond the last key
    empty = PairSet(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), NUM_ITEMS)
    assert empty.contains(users, items).tolist() == [False] * 8


def test_negatives_are_never_positives_and_come_from_the_candidates() -> None:
    candidates = torch.tensor([0, 1, 2, 3, 5])  # item 4 is not a candidate
    sampler = NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 4, candidates)
    users = torch.tensor([0, 1, 2, 3]).repeat(500)
    negatives = sampler.sample(users, _gen())
    assert not PairSet(USERS, ITEMS, NUM_ITEMS).contains(users, negatives).any()
    assert set(negatives.tolist()) <= set(candidates.tolist())
    assert set(negatives[users == 2].tolist()) == {0, 1, 3}  # 2, 5 are positives, 4 is not a candidate
    assert set(negatives[users == 3].tolist()) == set(candidates.tolist())  # no positive: every candidate


def test_a_user_with_one_free_candidate_always_gets_it() -> None:
    num_items = 20
    users = torch.zeros(num_items - 1, dtype=torch.long)
    items = torch.cat([torch.arange(17), torch.arange(18, num_items)])  # every item but 17
    sampler = NegativeSampler(PairSet(users, items, num_items), 2, torch.arange(num_items))
    negatives = sampler.sample(torch.tensor([0, 1]).repeat(100), _gen())
    assert (negatives[0::2] == 17).all()
    assert len(set(negatives[1::2].tolist())) > 15  # user 1 has no positive: spread over the items


def test_negative_sampling_is_seeded() -> None:
    sampler = NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 3, torch.arange(NUM_ITEMS))
    users = torch.tensor([0, 1, 2]).repeat(50)
    assert torch.equal(sampler.sample(users, _gen(7)), sampler.sample(users, _gen(7)))
    assert not torch.equal(sampler.sample(users, _gen(7)), sampler.sample(users, _gen(8)))


def test_a_user_with_every_candidate_as_positive_is_rejected() -> None:
    candidates = torch.tensor([2, 4, 5])  # exactly user 2's positives
    with pytest.raises(ValueError, match=r"users \[2\] have every candidate"):
        NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 3, candidates)
    NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 3, torch.arange(NUM_ITEMS))  # item 1 etc. remain


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
def test_interaction_batches_cover_every_pair_once(batch_size: int) -> None:
    sampler = NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 3, torch.arange(NUM_ITEMS))
    batches = list(interaction_batches(USERS, ITEMS, sampler, batch_size, _gen()))
    n = len(USERS)
    assert len(batches) == num_batches(n, batch_size)
    assert [len(b) for b in batches] == [min(batch_size, n - s) for s in range(0, n, batch_size)]
    users = torch.cat([b.users for b in batches])
    pos, neg = torch.cat([b.pos_items for b in batches]), torch.cat([b.neg_items for b in batches])
    pairs = Counter(zip(users.tolist(), pos.tolist(), strict=True))
    assert pairs == Counter(zip(USERS.tolist(), ITEMS.tolist(), strict=True))
    assert not PairSet(USERS, ITEMS, NUM_ITEMS).contains(users, neg).any()


def test_interaction_batches_draw_several_distinctly_sampled_negatives_per_pair() -> None:
    sampler = NegativeSampler(PairSet(USERS, ITEMS, NUM_ITEMS), 3, torch.arange(NUM_ITEMS))
    batches = list(interaction_batches(USERS, ITEMS, sampler, 3, _gen(), negatives=4))
    assert [tuple(b.neg_items.shape) for b in batches] == [(3, 4), (3, 4), (1, 4)]
    users, neg = torch.cat([b.users for b in batches]), torch.cat([b.neg_items for b in batches])
    assert not PairSet(USERS, ITEMS, NUM_ITEMS).contains(users.unsqueeze(1).expand_as(neg), neg).any()
    assert (neg != neg[:, :1]).any(dim=1).any()  # drawn independently, not one negative repeated
    with pytest.raises(ValueError, match="negatives per positive must be >= 1, got 0"):
        next(interaction_batches(USERS, ITEMS, sampler, 3, _gen(), negatives=0))


def test_triple_batches_corrupt_exactly_one_side() -> None:
    gen = _gen(3)
    heads, tails = torch.randint(30, (2, 500), generator=gen)
    kg = KnowledgeGraph(30, 3, heads, torch.randint(3, (500,), generator=gen), tails, torch.arange(5))
    batches = list(triple_batches(kg, 64, _gen()))
    assert [len(b) for b in batches] == [64] * 7 + [500 - 7 * 64]
    h, r, t, neg_h, neg_t = (torch.cat([getattr(b, f) for b in batches])
                             for f in ("heads", "relations", "tails", "neg_heads", "neg_tails"))
    triples = Counter(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist(), strict=True))
    assert Counter(zip(h.tolist(), r.tolist(), t.tolist(), strict=True)) == triples  # each triple once
    head_kept, tail_kept = neg_h == h, neg_t == t
    assert (head_kept | tail_kept).all()  # never both sides replaced
    assert 150 < int((~head_kept).sum()) < 350 and 150 < int((~tail_kept).sum()) < 350  # about half each
    assert int(neg_h.min()) >= 0 and int(neg_t.max()) < 30


def test_tail_corruption_keeps_every_head() -> None:
    gen = _gen(4)
    heads, tails = torch.randint(30, (2, 200), generator=gen)
    kg = KnowledgeGraph(30, 3, heads, torch.randint(3, (200,), generator=gen), tails, torch.arange(5))
    batches = list(triple_batches(kg, 64, _gen(), corrupt="tail"))
    assert all(torch.equal(b.neg_heads, b.heads) for b in batches)
    assert sum(int((b.neg_tails != b.tails).sum()) for b in batches) > 150
    with pytest.raises(ValueError, match="corrupt"):
        next(triple_batches(kg, 64, _gen(), corrupt="head"))


def test_joint_batches_pair_each_interaction_batch_with_as_many_triples() -> None:
    gen = _gen(5)
    kg = KnowledgeGraph(30, 3, torch.randint(30, (50,), generator=gen), torch.randint(3, (50,), generator=gen),
                        torch.randint(30, (50,), generator=gen), torch.arange(5))
    users, items = torch.randint(20, (300,), generator=gen), torch.randint(40, (300,), generator=gen)
    sampler = NegativeSampler(PairSet(users, items, 40), 20, torch.arange(40))
    joint = list(joint_batches(interaction_batches(users, items, sampler, 32, _gen()), kg, _gen()))
    assert len(joint) == 10
    assert [len(b.triples) for b in joint] == [len(b.interactions) for b in joint]
    seen = Counter(zip(*(torch.cat([getattr(b.triples, f) for b in joint]).tolist()
                         for f in ("heads", "relations", "tails")), strict=True))
    every = Counter(zip(kg.heads.tolist(), kg.relations.tolist(), kg.tails.tolist(), strict=True))
    assert set(seen) == set(every)  # more interactions than triples: every triple is drawn
    assert all(torch.equal(b.triples.neg_heads, b.triples.heads) for b in joint)
