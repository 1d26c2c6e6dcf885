"""Training batches: interactions with uniform negatives, and corrupted triples. Seeded, vectorised, on the device of
their inputs (a whole epoch is drawn at once there, with the generator of that device; batches are slices of it).

:class:`NegativeSampler` draws items uniformly from a candidate set and redraws, for the whole
batch at once, every draw that hits one of the user's training positives, so a negative is never a
positive. Lookups are ``searchsorted`` on sorted ``user * num_items + item`` keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields

import torch

from models.base import InteractionBatch, JointBatch, TripleBatch
from models.graph import KnowledgeGraph
from models.typing import BoolTensor, LongTensor

MAX_ROUNDS = 1000


def in_sorted(sorted_keys: LongTensor, keys: LongTensor) -> BoolTensor:
    """Which ``keys`` occur in ``sorted_keys`` (ascending). keys: any shape -> the same shape."""
    if len(sorted_keys) == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    at = torch.searchsorted(sorted_keys, keys).clamp_max(len(sorted_keys) - 1)
    return sorted_keys[at] == keys


class PairSet:
    """A set of (user, item) pairs with a vectorised membership test: sorted ``user * num_items + item`` keys."""

    def __init__(self, users: LongTensor, items: LongTensor, num_items: int) -> None:
        self.num_items = num_items
        self.keys = torch.unique(users.long() * num_items + items.long())  # sorted

    def contains(self, users: LongTensor, items: LongTensor) -> BoolTensor:
        return in_sorted(self.keys, users.long() * self.num_items + items.long())

    def to(self, device: torch.device | str) -> PairSet:
        moved = object.__new__(PairSet)
        moved.num_items, moved.keys = self.num_items, self.keys.to(device)
        return moved


class NegativeSampler:
    """Uniform negatives from ``candidates`` (default: every item) that are never a user's positive."""

    def __init__(self, positives: PairSet, num_users: int, candidates: LongTensor) -> None:
        self.positives, self.candidates = positives, candidates
        users = torch.div(positives.keys, positives.num_items, rounding_mode="floor")
        items = positives.keys % positives.num_items
        in_candidates = torch.isin(items, candidates)
        per_user = torch.bincount(users[in_candidates], minlength=num_users)
        full = torch.nonzero(per_user >= len(candidates)).flatten()
        if len(full):
            raise ValueError(f"users {full[:5].tolist()} have every candidate item as a positive: no negative exists")

    def to(self, device: torch.device | str) -> NegativeSampler:
        """The sampler with its tables on ``device`` (it then samples there)."""
        moved = object.__new__(NegativeSampler)
        moved.positives, moved.candidates = self.positives.to(device), self.candidates.to(device)
        return moved

    def sample(self, users: LongTensor, generator: torch.Generator | None = None) -> LongTensor:
        """One negative item per entry of ``users``. users: any shape (e.g. (B,) or (B, N)) -> the same shape.
        Drawn on the samplers' device (the generator's)."""
        device = self.candidates.device
        draw = self.candidates[torch.randint(len(self.candidates), users.shape, generator=generator, device=device)]
        for _ in range(MAX_ROUNDS):
            hit = self.positives.contains(users, draw)
            if not bool(hit.any()):
                return draw
            redraw = torch.randint(len(self.candidates), (int(hit.sum()),), generator=generator, device=device)
            draw[hit] = self.candidates[redraw]
        raise RuntimeError(f"negative sampling did not converge in {MAX_ROUNDS} rounds")


def interaction_batches(
    users: LongTensor, items: LongTensor, sampler: NegativeSampler, batch_size: int, generator: torch.Generator,
    negatives: int = 1,
) -> Iterator[InteractionBatch]:
    """One epoch: every training pair once, in random order, each with a fresh negative (``neg_items`` (B,)), or
    ``negatives`` > 1 fresh negatives (``neg_items`` (B, negatives))."""
    if negatives < 1:
        raise ValueError(f"negatives per positive must be >= 1, got {negatives}")
    order = torch.randperm(len(users), generator=generator, device=users.device)
    shuffled, positives = users[order], items[order]
    drawn = sampler.sample(shuffled if negatives == 1 else shuffled.unsqueeze(1).repeat(1, negatives), generator)
    for start in range(0, len(order), batch_size):
        at = slice(start, start + batch_size)
        yield InteractionBatch(shuffled[at], positives[at], drawn[at])


CORRUPT = ("both", "tail")


def triple_batches(kg: KnowledgeGraph, batch_size: int, generator: torch.Generator, corrupt: str = "both"
                   ) -> Iterator[TripleBatch]:
    """One epoch over the triples; each gets its head or its tail (50/50) replaced by a uniform entity, or
    always its tail with ``corrupt="tail"`` (KGAT's and CKE's sampling)."""
    if corrupt not in CORRUPT:
        raise ValueError(f"corrupt must be one of {CORRUPT}, got {corrupt!r}")
    device = kg.heads.device
    order = torch.randperm(kg.num_triples, generator=generator, device=device)
    h, r, t = kg.heads[order], kg.relations[order], kg.tails[order]
    corrupt_head = torch.rand(len(order), generator=generator, device=device) < (0.5 if corrupt == "both" else 0.0)
    random_entity = torch.randint(kg.num_entities, (len(order),), generator=generator, device=device)
    neg_h = torch.where(corrupt_head, random_entity, h)
    neg_t = torch.where(corrupt_head, t, random_entity)
    for start in range(0, len(order), batch_size):
        s = slice(start, start + batch_size)
        yield TripleBatch(h[s], r[s], t[s], neg_h[s], neg_t[s])


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


def joint_batches(interactions: Iterable[InteractionBatch], kg: KnowledgeGraph, generator: torch.Generator
                  ) -> Iterator[JointBatch]:
    """Each interaction batch with as many triples (tails corrupted), drawn by cycling through shuffled
    passes over the triples, so an epoch sees every triple about ``interactions / triples`` times."""
    stream: Iterator[TripleBatch] = iter(())
    for batch in interactions:
        parts, need = [], len(batch)
        while need:
            part = next(stream, None)
            if part is None:
                stream = triple_batches(kg, len(batch), generator, corrupt="tail")
                continue
            part = _head(part, need)
            parts.append(part)
            need -= len(part)
        yield JointBatch(batch, parts[0] if len(parts) == 1 else _concat(parts))


def _head(batch: TripleBatch, n: int) -> TripleBatch:
    return TripleBatch(*(getattr(batch, f.name)[:n] for f in fields(batch)))


def _concat(parts: list[TripleBatch]) -> TripleBatch:
    return TripleBatch(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(TripleBatch)))
