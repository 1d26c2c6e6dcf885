"""Explanations for every model: the best KG paths from a user's history items to a recommended item.

``Explainer(model, data).explain(user, item, k)`` enumerates every path of 1-3 hops from the items ``user``
interacted with in training to ``item`` (:class:`models.paths.PathFinder`), scores them with the model's own
``path_scores`` (its attention along the path, the plausibility of its KG embeddings, or, for models without a
KG, the similarity of their item vectors) and returns the ``k`` best, ties broken by fewer hops. Paths use model
indices (item_index, entity and relation indices of :class:`~models.data.RecData`); the scoring step maps them
to ids and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.base import KGEModel, RecModel
from models.data import RecData
from models.paths import PathFinder, PathSet


@dataclass(frozen=True)
class Hop:
    """One step of a path: along ``relation`` to ``entity``; ``inverse`` when walked from tail to head."""

    relation: int
    entity: int
    inverse: bool


@dataclass(frozen=True)
class Path:
    """From history item ``item`` (its entity ``entity``) over ``hops`` to the candidate's entity."""

    item: int
    entity: int
    hops: tuple[Hop, ...]
    score: float

    def triples(self) -> list[tuple[int, int, int]]:
        """The KG triples (head, relation, tail) the path walks, in entity indices."""
        out, at = [], self.entity
        for hop in self.hops:
            out.append((hop.entity, hop.relation, at) if hop.inverse else (at, hop.relation, hop.entity))
            at = hop.entity
        return out


class Explainer:
    """Paths for ``model`` over ``data``'s KG, from the users' ``history`` splits (training by default)."""

    def __init__(self, model: RecModel | KGEModel, data: RecData, history: Sequence[str] = ("train",)) -> None:
        self.model, self.finder = model, PathFinder(data.kg)
        users = torch.cat([data.splits[s].users for s in history])
        items = torch.cat([data.splits[s].items for s in history])
        order = torch.argsort(users, stable=True)
        self.items = items[order]
        self.pointer = torch.zeros(data.num_users + 1, dtype=torch.long)
        self.pointer[1:] = torch.cumsum(torch.bincount(users, minlength=data.num_users), 0)

    def history(self, user: int) -> torch.Tensor:
        return self.items[self.pointer[user] : self.pointer[user + 1]]

    def explain(self, user: int, item: int, k: int = 3) -> list[Path]:
        """The ``k`` best paths from ``user``'s history to ``item`` (fewer when fewer exist)."""
        return self.explain_many(user, [item], k)[0]

    @torch.no_grad()
    def explain_many(self, user: int, items: Sequence[int], k: int = 3) -> list[list[Path]]:
        """The ``k`` best paths to each of ``items`` (one path enumeration for all of them)."""
        candidates = torch.as_tensor(list(items), dtype=torch.long)
        paths = self.finder.find(self.history(user), candidates)
        if not len(paths):
            return [[] for _ in items]
        was_training = self.model.training
        self.model.eval()
        try:
            scores = self.model.path_scores(user, _on(paths, _device(self.model))).float().cpu()
        finally:
            self.model.train(was_training)
        # best first: by candidate, then score descending, then fewer hops
        order = torch.argsort(paths.length, stable=True)
        order = order[torch.argsort(-scores[order], stable=True)]
        order = order[torch.argsort(paths.candidate[order], stable=True)]
        ranked = paths.candidate[order]
        first = torch.searchsorted(ranked, torch.arange(len(candidates)))
        count = torch.bincount(ranked, minlength=len(candidates))
        out = []
        for c in range(len(candidates)):  # over the asked items (a handful), not over paths
            best = order[first[c] : first[c] + min(int(count[c]), k)]
            out.append([_path(paths, int(i), float(scores[i])) for i in best])
        return out


def _path(paths: PathSet, i: int, score: float) -> Path:
    n = int(paths.length[i])
    entities, relations, inverse = paths.entities[i].tolist(), paths.relations[i].tolist(), paths.inverse[i].tolist()
    hops = tuple(Hop(relations[j], entities[j + 1], bool(inverse[j])) for j in range(n))
    return Path(int(paths.item[i]), entities[0], hops, score)


def _device(model: torch.nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), torch.zeros(()))
    return tensor.device


def _on(paths: PathSet, device: torch.device) -> PathSet:
    if device.type == "cpu":
        return paths
    return PathSet(*(getattr(paths, name).to(device) for name in PathSet.__dataclass_fields__))
