"""The model interface: :class:`RecModel` for recommenders and :class:`KGEModel` for KG embeddings.

Constructors take counts and hyperparameters as keyword arguments with their defaults in the
signature, never a dataset or a config dict. Users and items are dense indices
(``user_index`` in 0..num_users-1, ``item_index`` in 0..num_items-1); entities and relations are
dense model indices (see :mod:`models.data`). Graphs are buffers, so ``.to(device)`` moves them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Self

import torch
from torch import nn

from models.paths import hop_mean
from models.typing import FloatTensor, LongTensor

if TYPE_CHECKING:
    from models.data import RecData
    from models.graph import KnowledgeGraph
    from models.paths import PathSet


@dataclass(frozen=True)
class InteractionBatch:
    """One training batch of (user, positive item, sampled negative item); each shape (B,), or ``neg_items`` (B, N)
    when the trainer draws N negatives per positive (``train.negatives``; models with ``multi_negative``)."""

    users: LongTensor
    pos_items: LongTensor
    neg_items: LongTensor

    def to(self, device: torch.device) -> InteractionBatch:
        return InteractionBatch(*(getattr(self, f.name).to(device) for f in fields(self)))

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class TripleBatch:
    """True triples and one corrupted copy each (head or tail replaced); each shape (B,)."""

    heads: LongTensor
    relations: LongTensor
    tails: LongTensor
    neg_heads: LongTensor
    neg_tails: LongTensor

    def to(self, device: torch.device) -> TripleBatch:
        return TripleBatch(*(getattr(self, f.name).to(device) for f in fields(self)))

    def __len__(self) -> int:
        return len(self.heads)


@dataclass(frozen=True)
class JointBatch:
    """An interaction batch and a triple batch trained in one step (CKE's joint loss)."""

    interactions: InteractionBatch
    triples: TripleBatch

    def to(self, device: torch.device) -> JointBatch:
        return JointBatch(self.interactions.to(device), self.triples.to(device))

    def __len__(self) -> int:
        return len(self.interactions)


class RecModel(nn.Module):
    """A recommender: higher scores mean more likely to interact.

    ``kind`` names the data a model trains on (``"interactions"``); ``trainable`` is False for
    count-based baselines, which the trainer fits in one pass without an optimiser; ``samples_graph``
    is True for models whose ``from_data`` samples a fixed structure from the KG (neighbourhoods, ripple
    sets) with a ``seed`` keyword, which :func:`models.fit.build_model` sets to the run's seed.

    Models with a KG loss of their own set ``kg_phase``: ``"alternate"`` trains ``kg_loss`` on
    :meth:`kg_triples` in a phase of its own after each pass over the interactions (KGAT), ``"joint"`` adds
    it to every interaction batch's ``loss`` (CKE). Their negatives replace the tail only.

    ``multi_negative`` is True for models whose ``loss`` takes N negatives per positive (``neg_items`` of shape
    (B, N)); the trainer refuses ``negatives`` > 1 for the others.

    ``precisions`` lists the precisions the model may train in (``train.precision``): fp32 always, bf16 (autocast)
    only where a test shows the model reaching its fp32 validation metric in it. ``graph_phases`` names the training
    phases (``"cf"``, ``"cf+kg"``, ``"kg"``) whose step may be captured as a CUDA graph: fixed shapes and no host
    synchronisation in the loss (:mod:`models.cuda_graphs`).
    """

    kind = "interactions"
    trainable = True
    samples_graph = False
    multi_negative = False
    kg_phase: str | None = None
    precisions: tuple[str, ...] = ("fp32",)
    graph_phases: tuple[str, ...] = ()

    def __init__(self, *, num_users: int, num_items: int) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1:
            raise ValueError(f"num_users and num_items must be positive, got {num_users}, {num_items}")
        self.num_users, self.num_items = num_users, num_items

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        """The model for ``data``'s counts (KG models add the graph; RippleNet its ripple sets)."""
        return cls(num_users=data.num_users, num_items=data.num_items, **hyper)

    def loss(self, batch: InteractionBatch) -> FloatTensor:
        """The training loss of one batch (a scalar)."""
        raise NotImplementedError

    def score(self, users: LongTensor, items: LongTensor) -> FloatTensor:
        """Scores of the pairs ``(users[b], items[b])``. users, items: shape (B,) -> (B,)."""
        raise NotImplementedError

    def score_all(self, users: LongTensor) -> FloatTensor:
        """Scores of every item for each user. users: shape (B,) -> (B, num_items)."""
        raise NotImplementedError

    def kg_triples(self) -> KnowledgeGraph:
        """The triples ``kg_loss`` trains on (models with a ``kg_phase``)."""
        raise NotImplementedError

    def kg_loss(self, batch: TripleBatch) -> FloatTensor:
        """The KG loss of one batch of triples, already weighted (models with a ``kg_phase``)."""
        raise NotImplementedError

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """How strongly this model supports each KG path from its user's history to a candidate, higher = better:
        its attention along the path, or the similarity of its embeddings (:mod:`models.explain`). users: (P,) the
        user of each path (many users in one call, on the model's device) -> (P,)."""
        raise NotImplementedError

    def on_epoch_start(self, generator: torch.Generator) -> None:
        """Hook before each training epoch (e.g. re-sample neighbourhoods); nothing by default."""

    def on_epoch_end(self) -> None:
        """Hook after each epoch's training, before validation (KGAT recomputes its attention); nothing by default."""


CHUNK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 28}  # work per chunk: cache-friendly on a CPU, large on a GPU


def item_chunks(num_items: int, per_item_cost: int, rows: int, device: torch.device | str = "cpu"
                ) -> list[LongTensor]:
    """Item index ranges (on ``device``) whose ``rows x items x per_item_cost`` work stays under the device's
    :data:`CHUNK_ELEMENTS`: few, large chunks on a GPU, where each chunk's kernel launches cost more than its work."""
    device = torch.device(device)
    size = max(1, CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS["cpu"]) // max(rows * per_item_cost, 1))
    return list(torch.arange(num_items, device=device).split(size))


class KGEModel(nn.Module):
    """A knowledge-graph embedding: ``score_hrt(h, r, t)``, higher = more plausible."""

    kind = "triples"
    trainable = True
    samples_graph = False
    precisions: tuple[str, ...] = ("fp32",)
    graph_phases: tuple[str, ...] = ("kg",)  # score_hrt and a margin or BCE loss: fixed shapes, no host sync

    def __init__(self, *, num_entities: int, num_relations: int) -> None:
        super().__init__()
        if num_entities < 1 or num_relations < 1:
            raise ValueError(f"num_entities and num_relations must be positive, got {num_entities}, {num_relations}")
        self.num_entities, self.num_relations = num_entities, num_relations

    @classmethod
    def from_data(cls, data: RecData, **hyper: Any) -> Self:
        """The model for the counts of ``data``'s KG."""
        return cls(num_entities=data.kg.num_entities, num_relations=data.kg.num_relations, **hyper)

    def score_hrt(self, h: LongTensor, r: LongTensor, t: LongTensor) -> FloatTensor:
        """Scores of the triples. h, r, t: shape (B,) -> (B,)."""
        raise NotImplementedError

    def score_t(self, h: LongTensor, r: LongTensor) -> FloatTensor:
        """Scores of every entity as the tail. h, r: shape (B,) -> (B, num_entities)."""
        raise NotImplementedError

    def score_h(self, r: LongTensor, t: LongTensor) -> FloatTensor:
        """Scores of every entity as the head. r, t: shape (B,) -> (B, num_entities)."""
        raise NotImplementedError

    def loss(self, batch: TripleBatch) -> FloatTensor:
        """The training loss of one batch (a scalar)."""
        raise NotImplementedError

    def path_scores(self, users: LongTensor, paths: PathSet) -> FloatTensor:
        """The mean plausibility of each path's hops as triples (a KG embedding has no users: ``users`` (P,) is
        ignored). -> (P,)."""
        heads, relations, tails, valid = paths.hop_triples()
        flat = self.score_hrt(heads.clamp_min(0).flatten(), relations.clamp_min(0).flatten(),
                              tails.clamp_min(0).flatten())
        return hop_mean(flat.view_as(heads), valid)

    def on_epoch_start(self, generator: torch.Generator) -> None:
        """Hook before each training epoch; nothing by default."""
