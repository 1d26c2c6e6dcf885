"""Explanations for every model: the best KG paths from a user's history items to a recommended item.

``Explainer(model, data).explain(user, item, k)`` enumerates every path of 1-3 hops from the items ``user``
interacted with in training to ``item`` (:class:`models.paths.PathFinder`) over the KG, and, for the models trained
on the collaborative KG (``explains_with_interactions``: KGAT, KGAT-AX, KGIF), over the training interactions too
(a hop from an item to a user who had it, never through the user being explained), scores them with the model's own
``path_scores`` (its attention along the path, the plausibility of its KG embeddings, or, for models without a
KG, the similarity of their item vectors) and returns the ``k`` best, ties broken by fewer hops. ``best_many`` does
the same for many users at once, with one path search (:meth:`~models.paths.PathFinder.find_many`) and one
``path_scores(users, paths)`` call, on the model's device: the scoring job's form. Paths use model
indices (item_index, entity and relation indices of :class:`~models.data.RecData`); the scoring step maps them
to ids and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.base import KGEModel, RecModel
from models.data import RecData
from models.graph import csr_pointer, expand_ranges
from models.paths import PathFinder, PathSet, with_interactions
from models.typing import LongTensor


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
    model saw); the scoring job passes every split, as everything a user had explains what they get next.
    ``max_degree`` caps the 3-hop paths through hubs (:class:`models.paths.PathFinder`; None: every path). The path
    search and the scoring run on the model's device (the history and the adjacency follow the model there on the
    first call after it moved); the results come back on the CPU."""

    def __init__(self, model: RecModel | KGEModel, data: RecData, history: Sequence[str] = ("train",),
                 max_degree: int | None = None) -> None:
        users = torch.cat([data.splits[s].users for s in history])
        items = torch.cat([data.splits[s].items for s in history])
        self.model, self.num_entities = model, data.kg.num_entities
        self.interactions = bool(getattr(model, "explains_with_interactions", False))
        # collaborative hops: the training interactions, the ones the model's own graph holds
        train = data.splits["train"]
        graph = with_interactions(data.kg, train.users, train.items, data.num_users) if self.interactions else data.kg
        self.finder = PathFinder(graph, max_degree=max_degree)
        order = torch.argsort(users, stable=True)
        self.items = items[order]
        self.pointer = csr_pointer(users, data.num_users)

    @property
    def device(self) -> torch.device:
        """The model's device, where the paths are searched and scored."""
        return _device(self.model)

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

    def best(self, user: int, items: Sequence[int] | torch.Tensor, k: int = 3) -> BestPaths:
        """The ``k`` best paths to each of ``items`` as tensors, grouped by candidate (in the order asked), best
        first; :meth:`best_many` for one user."""
        candidates = torch.as_tensor(items, dtype=torch.long).reshape(1, -1)
        return self.best_many(torch.tensor([user]), candidates, k)

    @torch.no_grad()
    def best_many(self, users: LongTensor, items: LongTensor, k: int = 3, *, owner: LongTensor | None = None
                  ) -> BestPaths:
        """The ``k`` best paths from each user's history to each of its candidates, best first (by the model's
        ``path_scores``, ties broken by fewer hops, then by the order found), as CPU tensors, with one path search
        and one ``path_scores`` call for all users.

        users: (U,) user indices; items: (U, J), row u the candidates of ``users[u]``, or flat (C,) with ``owner``
        (C,) the row in ``users`` of each candidate (users with different numbers of candidates). The result's
        ``paths.candidate`` indexes ``items.flatten()``; its paths are grouped by candidate in that order.
        """
        if owner is None and items.dim() != 2:
            raise ValueError(f"items must be (U, J), or flat with an owner per item; got shape {tuple(items.shape)}")
        self._follow_model()
        device = self.device
        users = users.to(device)
        if owner is None:
            owner = torch.arange(len(users), device=device).repeat_interleave(items.shape[1])
        items, owner = items.reshape(-1).to(device), owner.to(device)
        start, count = self.pointer[users], self.pointer[users + 1] - self.pointer[users]
        hist_owner, _, at = expand_ranges(start, count)  # every history item of every user
        exclude = self.num_entities + users if self.interactions else None  # not "you had X, and you had Y"
        paths = self.finder.find_many(hist_owner, self.items[at], owner, items, exclude)
        if not len(paths):
            return BestPaths(_on(paths, torch.device("cpu")), torch.zeros(0), torch.zeros(0, dtype=torch.long))
        return _ranked(paths, self._scores(users[owner[paths.candidate]], paths), len(items), k)

    def _scores(self, users: LongTensor, paths: PathSet) -> torch.Tensor:
        """The model's ``path_scores`` in evaluation mode. users: (P,) -> (P,) float32."""
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model.path_scores(users, paths).float()
        finally:
            self.model.train(was_training)

    def _follow_model(self) -> None:
        """Move the history and the adjacency to the model's device, once after each move of the model."""
        device = self.device
        if self.pointer.device != device:
            self.finder = self.finder.to(device)
            self.items, self.pointer = self.items.to(device), self.pointer.to(device)

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


def _ranked(paths: PathSet, scores: torch.Tensor, candidates: int, k: int) -> BestPaths:
    """The ``k`` best of ``paths`` per candidate, on the CPU: by candidate, then score descending, then fewer hops
    (stable sorts: equal paths keep the order found). scores: (P,)."""
    order = torch.argsort(paths.length, stable=True)
    order = order[torch.argsort(-scores[order], stable=True)]
    order = order[torch.argsort(paths.candidate[order], stable=True)]
    ranked = paths.candidate[order]
    first = csr_pointer(ranked, candidates)[:-1]
    rank = torch.arange(len(order), device=order.device) - first[ranked]  # 0 for each candidate's best path
    top, cpu = rank < k, torch.device("cpu")
    return BestPaths(_on(paths.select(order[top]), cpu), scores[order[top]].to(cpu), rank[top].to(cpu))


def _on(paths: PathSet, device: torch.device) -> PathSet:
    if paths.candidate.device == device:
        return paths
    return PathSet(*(getattr(paths, name).to(device) for name in PathSet.__dataclass_fields__))
