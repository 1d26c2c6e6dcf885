"""The KG as tensors, and the seeded, vectorised sampling built once outside the models.

- :class:`KnowledgeGraph`: triples ``(heads, relations, tails)`` over dense entity and relation
  indices, and ``item_entity`` (item_index -> entity index; items are *not* the first entities).
- :func:`sample_neighbors`: KGCN's fixed-size neighbourhood, K (entity, relation) pairs per entity
  on the undirected graph, without replacement when an entity has at least K neighbours.
- :func:`ripple_sets`: RippleNet's ripple sets, M (head, relation, tail) memories per user and hop,
  spreading from the user's training items along directed triples (distinct when there are at least M).

No loop runs over entities, users or edges: sampling is sort + segment offsets + ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.typing import BoolTensor, LongTensor

ENUMERATE = 4  # _positions lists every candidate of a row when it has at most this many times M
MAX_REDRAWS = 1000


def csr_pointer(rows: LongTensor, n: int) -> LongTensor:
    """Where each row's entries start in ``rows`` sorted: (n + 1,), row r at ``pointer[r]:pointer[r + 1]``."""
    pointer = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
    pointer[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    return pointer


def expand_ranges(start: LongTensor, count: LongTensor) -> tuple[LongTensor, LongTensor, LongTensor]:
    """Every index of the ranges ``start[i] .. start[i] + count[i] - 1``, vectorised: (owner i, position within
    its range, index), each of length ``count.sum()``."""
    owner = torch.repeat_interleave(torch.arange(len(count), device=count.device), count)
    position = torch.arange(len(owner), device=count.device) - torch.repeat_interleave(torch.cumsum(count, 0) - count,
                                                                                      count)
    return owner, position, start[owner] + position


@dataclass(frozen=True)
class KnowledgeGraph:
    """Triples over dense indices. heads, relations, tails: shape (E,); item_entity: shape (num_items,)."""

    num_entities: int
    num_relations: int
    heads: LongTensor
    relations: LongTensor
    tails: LongTensor
    item_entity: LongTensor

    def __post_init__(self) -> None:
        n = len(self.heads)
        if not len(self.relations) == len(self.tails) == n:
            raise ValueError("heads, relations and tails must have the same length")
        for name, ids, bound in [("heads", self.heads, self.num_entities), ("tails", self.tails, self.num_entities),
                                 ("relations", self.relations, self.num_relations),
                                 ("item_entity", self.item_entity, self.num_entities)]:
            if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= bound):
                raise ValueError(f"{name} holds an index outside 0..{bound - 1}")

    @property
    def num_triples(self) -> int:
        return len(self.heads)

    def to(self, device: torch.device | str) -> KnowledgeGraph:
        """The same graph with its tensors on ``device``."""
        return KnowledgeGraph(self.num_entities, self.num_relations, self.heads.to(device),
                              self.relations.to(device), self.tails.to(device), self.item_entity.to(device))

    @property
    def num_items(self) -> int:
        return len(self.item_entity)

    def undirected(self) -> tuple[LongTensor, LongTensor]:
        """``edge_index`` (2, 2E) with both directions of every triple and ``edge_type`` (2E,).

        Row 0 holds the source (the entity being aggregated into), row 1 the neighbour.
        """
        src = torch.cat([self.heads, self.tails])
        dst = torch.cat([self.tails, self.heads])
        return torch.stack([src, dst]), torch.cat([self.relations, self.relations])


@dataclass(frozen=True)
class Neighbors:
    """K sampled neighbours per entity. entity, relation, mask: shape (num_entities, K).

    An entity with no neighbour has all slots masked (entity = itself, relation 0, mask False).
    """

    entity: LongTensor
    relation: LongTensor
    mask: BoolTensor


@dataclass(frozen=True)
class RippleSets:
    """M memories per user and hop. heads, relations, tails, mask: shape (num_users, H, M).

    A user with no triple to spread along at a hop has that hop masked.
    """

    heads: LongTensor
    relations: LongTensor
    tails: LongTensor
    mask: BoolTensor


def _csr(src: LongTensor, n: int, generator: torch.Generator | None) -> tuple[LongTensor, LongTensor]:
    """Edges grouped by ``src`` in random order within each group: (order (E,), pointer (n + 1,))."""
    keys = torch.rand(len(src), generator=generator, dtype=torch.float64)
    order = torch.argsort(src.double() + keys * 0.5, stable=True)  # by src, random within src
    return order, csr_pointer(src, n)


def sample_neighbors(
    edge_index: LongTensor, edge_type: LongTensor, num_entities: int, k: int, generator: torch.Generator | None = None
) -> Neighbors:
    """K neighbours per entity: a random K without replacement when the degree is at least K,
    else every neighbour once plus uniform draws with replacement to fill K. (The authors' code, and
    RecBole's, draw all K with replacement below degree K, which can leave neighbours out.)

    edge_index: shape (2, E) (source, neighbour); edge_type: shape (E,).
    """
    if k < 1:
        raise ValueError(f"neighbour sample size must be >= 1, got {k}")
    order, pointer = _csr(edge_index[0], num_entities, generator)
    degree = pointer[1:] - pointer[:-1]  # (N,)
    slot = torch.arange(k).expand(num_entities, k)  # (N, K)
    draw = (torch.rand(num_entities, k, generator=generator) * degree.clamp_min(1)[:, None]).long()
    offset = torch.where(slot < degree[:, None], slot, draw)  # first min(deg, K) distinct, then draws
    mask = degree[:, None].expand(num_entities, k) > 0
    position = (pointer[:-1, None] + offset).clamp_max(max(len(order) - 1, 0))
    if len(order) == 0:
        itself = torch.arange(num_entities)[:, None].expand(num_entities, k)
        return Neighbors(itself.clone(), torch.zeros_like(itself), mask)
    edge = order[position]  # (N, K)
    entity = torch.where(mask, edge_index[1][edge], torch.arange(num_entities)[:, None])
    relation = torch.where(mask, edge_type[edge], torch.zeros_like(edge))
    return Neighbors(entity, relation, mask)


def ripple_sets(
    kg: KnowledgeGraph,
    users: LongTensor,
    items: LongTensor,
    num_users: int,
    hops: int,
    memory: int,
    generator: torch.Generator | None = None,
) -> RippleSets:
    """Ripple sets of every user (Wang et al., CIKM 2018, RippleNet), drawn as the authors' code does.

    Hop 1 candidates are the triples whose head is one of the user's items (their entities); hop h + 1
    candidates are the triples whose head is a tail of the user's hop h memories (with multiplicity). Each
    hop takes M distinct candidates when there are at least M, else M draws with replacement. A user with
    no candidate at hop h > 1 repeats hop h - 1's memories; with none at hop 1, every hop is masked.

    users, items: shape (I,), the training interactions the sets spread from.
    """
    if hops < 1 or memory < 1:
        raise ValueError(f"hops and memory must be >= 1, got {hops}, {memory}")
    order, pointer = _csr(kg.heads, kg.num_entities, generator)
    degree = pointer[1:] - pointer[:-1]
    seed_user, seed_entity = users, kg.item_entity[items]
    heads, relations, tails, masks = [], [], [], []
    for hop in range(hops):  # over hops (H), never over users or entities
        edge, found = _draw_edges(seed_user, seed_entity, order, pointer, degree, num_users, memory, generator)
        h, r, t = kg.heads[edge], kg.relations[edge], kg.tails[edge]
        mask = found[:, None].expand(num_users, memory)
        if hop > 0:  # nothing new to spread to: the previous hop's memories again
            again = ~found[:, None]
            h, r, t = (torch.where(again, prev, new) for prev, new in ((heads[-1], h), (relations[-1], r),
                                                                         (tails[-1], t)))
            mask = torch.where(again, masks[-1], mask)
        heads.append(h)
        relations.append(r)
        tails.append(t)
        masks.append(mask)
        seed_user = torch.arange(num_users).repeat_interleave(memory)[mask.reshape(-1)]
        seed_entity = t.reshape(-1)[mask.reshape(-1)]
    stack = lambda parts: torch.stack(parts, dim=1)  # noqa: E731  (U, H, M)
    return RippleSets(stack(heads), stack(relations), stack(tails), stack(masks))


def _draw_edges(
    seed_user: LongTensor,
    seed_entity: LongTensor,
    order: LongTensor,
    pointer: LongTensor,
    degree: LongTensor,
    num_users: int,
    memory: int,
    generator: torch.Generator | None,
) -> tuple[LongTensor, BoolTensor]:
    """M edges per user from the out-edges of the user's seeds (:func:`_positions`): (edge (U, M), found (U,))."""
    by_user = torch.argsort(seed_user, stable=True)
    seed_user, seed_entity = seed_user[by_user], seed_entity[by_user]
    seed_degree = degree[seed_entity]  # (S,)
    cum = torch.cumsum(seed_degree, 0)  # (S,) candidates up to and including each seed
    total = torch.zeros(num_users, dtype=torch.long).index_add_(0, seed_user, seed_degree)  # (U,)
    start = torch.cumsum(total, 0) - total  # (U,) first candidate of each user
    found = total > 0
    if not bool(found.any()):
        return torch.zeros(num_users, memory, dtype=torch.long), found
    draw = _positions(total, memory, generator)
    flat = (start[:, None] + draw).clamp_max(int(cum[-1]) - 1)
    seed = torch.searchsorted(cum, flat, right=True)  # (U, M) which seed holds the candidate
    within = flat - (cum[seed] - seed_degree[seed])  # offset among that seed's out-edges
    edge = order[pointer[seed_entity[seed]] + within]
    return torch.where(found[:, None], edge, torch.zeros_like(edge)), found


def _positions(total: LongTensor, m: int, generator: torch.Generator | None) -> LongTensor:
    """M positions per row in ``0..total-1``: distinct when ``total >= m`` (uniform over the m-subsets), else
    uniform draws with replacement (0 where ``total == 0``). total: shape (U,) -> (U, M).

    Rows with few candidates (``m <= total <= ENUMERATE * m``) take the first m of a random order of all
    their candidates; rows with more redraw repeated positions until none is left (a redraw repeats with
    probability below 1 / ENUMERATE), so no row's candidates are ever all listed.
    """
    rows = len(total)
    pos = (torch.rand(rows, m, generator=generator) * total.clamp_min(1)[:, None]).long()
    pos = torch.minimum(pos, (total - 1).clamp_min(0)[:, None])
    few = torch.nonzero((total >= m) & (total <= ENUMERATE * m)).flatten()
    if len(few):
        counts = total[few]
        owner = torch.arange(len(few)).repeat_interleave(counts)
        first = torch.cumsum(counts, 0) - counts
        offset = torch.arange(len(owner)) - first.repeat_interleave(counts)
        shuffled = torch.argsort(owner.double() + torch.rand(len(owner), generator=generator, dtype=torch.float64)
                                 * 0.5, stable=True)  # by owner, random within
        pos[few] = offset[shuffled][first[:, None] + torch.arange(m)]
    many = torch.nonzero(total > ENUMERATE * m).flatten()
    for _ in range(MAX_REDRAWS):  # over redraw rounds, not rows
        if not len(many):
            break
        values, at = pos[many].sort(dim=1)
        repeated = torch.zeros_like(values, dtype=torch.bool)
        repeated[:, 1:] = values[:, 1:] == values[:, :-1]
        if not bool(repeated.any()):
            break
        row, col = torch.nonzero(repeated, as_tuple=True)
        fresh = (torch.rand(len(row), generator=generator) * total[many][row]).long()
        pos[many[row], at[row, col]] = fresh
        many = torch.unique(many[row])
    else:
        raise RuntimeError(f"distinct ripple-set draws did not settle in {MAX_REDRAWS} rounds")
    return pos
