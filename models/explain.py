"""Explanations for every model: the best KG paths from a user's history items to a recommended item.

``Explainer(model, data).explain(user, item, k)`` enumerates every path of 1-3 hops from the items ``user``
interacted with in training to ``item`` (:class:`models.paths.PathFinder`) over the KG, and, for the models trained
on the collaborative KG (``explains_with_interactions``: KGAT, KGAT-AX, KGIF), over the training interactions too
(a hop from an item to a user who had it, never through the user being explained), scores them with the model's own
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
from models.graph import csr_pointer
from models.paths import PathFinder, PathSet, with_interactions


@dataclass(frozen=True)
class Hop:
    """One step of a path: along KG relation ``relation`` to entity ``entity`` (``inverse`` when walked from tail to
    head), or along an interaction (``relation`` None) to a user (``user``) or from a user to an item's entity."""

    relation: int | None
    entity: int | None
    inverse: bool
    user: int | None = None


@dataclass(frozen=True)
class Path:
    """From history item ``item`` (its entity ``entity``) over ``hops`` to the candidate's entity."""

    item: int
    entity: int
    hops: tuple[Hop, ...]
    score: float

    def facts(self) -> list[tuple]:
        """What each hop walks: ``("triple", head, relation, tail)`` in entity and relation indices, or
        ``("interaction", user, entity)`` (the user had the item on that entity)."""
        out, at = [], ("entity", self.entity)
        for hop in self.hops:
            to = ("user", hop.user) if hop.user is not None else ("entity", hop.entity)
            if hop.relation is None:
                user, entity = (at[1], to[1]) if at[0] == "user" else (to[1], at[1])
                out.append(("interaction", user, entity))
            else:
                out.append(("triple", to[1], hop.relation, at[1]) if hop.inverse else
                           ("triple", at[1], hop.relation, to[1]))
            at = to
        return out

    def triples(self) -> list[tuple[int, int, int]]:
        """The KG triples (head, relation, tail) the path walks, in entity indices (interaction hops left out)."""
        return [fact[1:] for fact in self.facts() if fact[0] == "triple"]


@dataclass(frozen=True)
class BestPaths:
    """P paths best-first per candidate: ``paths`` (its ``candidate`` indexes the asked items), scores: (P,),
    rank: (P,) 0 for a candidate's best path."""

    paths: PathSet
    scores: torch.Tensor
    rank: torch.Tensor

    def __len__(self) -> int:
        return len(self.scores)


class Explainer:
    """Paths for ``model`` over ``data``'s KG, from the users' ``history`` splits: training by default (what the
    model saw); the scoring job passes every split, as everything a user had explains what they get next."""

    def __init__(self, model: RecModel | KGEModel, data: RecData, history: Sequence[str] = ("train",)) -> None:
        users = torch.cat([data.splits[s].users for s in history])
        items = torch.cat([data.splits[s].items for s in history])
        self.model, self.num_entities = model, data.kg.num_entities
        self.interactions = bool(getattr(model, "explains_with_interactions", False))
        # collaborative hops: the training interactions, the ones the model's own graph holds
        train = data.splits["train"]
        graph = with_interactions(data.kg, train.users, train.items, data.num_users) if self.interactions else data.kg
        self.finder = PathFinder(graph)
        order = torch.argsort(users, stable=True)
        self.items = items[order]
        self.pointer = csr_pointer(users, data.num_users)

    def history(self, user: int) -> torch.Tensor:
        return self.items[self.pointer[user] : self.pointer[user + 1]]

    def explain(self, user: int, item: int, k: int = 3) -> list[Path]:
        """The ``k`` best paths from ``user``'s history to ``item`` (fewer when fewer exist)."""
        return self.explain_many(user, [item], k)[0]

    def explain_many(self, user: int, items: Sequence[int], k: int = 3) -> list[list[Path]]:
        """The ``k`` best paths to each of ``items`` (one path enumeration for all of them)."""
        best = self.best(user, items, k)
        out: list[list[Path]] = [[] for _ in items]
        for i in range(len(best.paths)):  # at most k per asked item (a handful each)
            out[int(best.paths.candidate[i])].append(self._path(best.paths, i, float(best.scores[i])))
        return out

    @torch.no_grad()
    def best(self, user: int, items: Sequence[int] | torch.Tensor, k: int = 3) -> BestPaths:
        """The ``k`` best paths to each of ``items`` as tensors, grouped by candidate (in the order asked), best
        first; the scoring job's form (no Python object per path)."""
        candidates = torch.as_tensor(items, dtype=torch.long).reshape(-1)
        exclude = self.num_entities + user if self.interactions else None  # not "you had X, and you had Y"
        paths = self.finder.find(self.history(user), candidates, exclude)
        if not len(paths):
            return BestPaths(paths, torch.zeros(0), torch.zeros(0, dtype=torch.long))
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
        first = csr_pointer(ranked, len(candidates))[:-1]
        rank = torch.arange(len(order)) - first[ranked]  # 0 for each candidate's best path
        keep = rank < k
        return BestPaths(paths.select(order[keep]), scores[order[keep]], rank[keep])

    def _path(self, paths: PathSet, i: int, score: float) -> Path:
        n, interact = int(paths.length[i]), self.finder.kg.num_relations - 1
        nodes, relations = paths.entities[i].tolist(), paths.relations[i].tolist()
        inverse = paths.inverse[i].tolist()
        hops = []
        for j in range(n):
            node, relation = nodes[j + 1], relations[j]
            is_user = self.interactions and node >= self.num_entities
            hops.append(Hop(None if self.interactions and relation == interact else relation,
                            None if is_user else node, bool(inverse[j]), node - self.num_entities if is_user else None))
        return Path(int(paths.item[i]), nodes[0], tuple(hops), score)


def _device(model: torch.nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), torch.zeros(()))
    return tensor.device


def _on(paths: PathSet, device: torch.device) -> PathSet:
    if device.type == "cpu":
        return paths
    return PathSet(*(getattr(paths, name).to(device) for name in PathSet.__dataclass_fields__))
