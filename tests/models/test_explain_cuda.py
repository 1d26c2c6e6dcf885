"""Explanations on a GPU: every registered model's ``Explainer.best_many`` on CUDA finds the same paths as on the CPU,
with the same scores (within 1e-4), the path search, the history and the model's lookups all on the GPU."""

from __future__ import annotations

import copy

import pytest
import torch

from models import MODELS
from models.data import Pairs, RecData
from models.explain import BestPaths, Explainer
from models.fit import build_model
from models.graph import KnowledgeGraph

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available())")]

NUM_USERS, NUM_ITEMS, NUM_ENTITIES, NUM_RELATIONS = 12, 20, 60, 4


def random_data(seed: int = 0) -> RecData:
    """A random KG (items on shuffled entities, one hub of degree 30) and 12 users with 3-8 training items each."""
    gen = torch.Generator().manual_seed(seed)
    hrt = torch.stack([torch.randint(NUM_ENTITIES, (150,), generator=gen),
                       torch.randint(NUM_RELATIONS, (150,), generator=gen),
                       torch.randint(NUM_ENTITIES, (150,), generator=gen)], dim=1)
    spokes = torch.randperm(NUM_ENTITIES - 1, generator=gen)[:30] + 1
    hub = torch.stack([torch.zeros_like(spokes), spokes % NUM_RELATIONS, spokes], dim=1)
    hrt = torch.cat([hrt, hub])
    h, r, t = torch.unique(hrt[hrt[:, 0] != hrt[:, 2]], dim=0).T
    kg = KnowledgeGraph(NUM_ENTITIES, NUM_RELATIONS, h, r, t, torch.randperm(NUM_ENTITIES, generator=gen)[:NUM_ITEMS])
    counts = torch.randint(3, 9, (NUM_USERS,), generator=gen)
    users = torch.arange(NUM_USERS).repeat_interleave(counts)
    items = torch.cat([torch.randperm(NUM_ITEMS, generator=gen)[:c] for c in counts.tolist()])
    empty = Pairs(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    return RecData(NUM_USERS, NUM_ITEMS, {"train": Pairs(users, items), "valid": empty, "test": empty,
                                          "cold_test": empty}, kg, torch.arange(NUM_ENTITIES),
                   torch.arange(NUM_RELATIONS))


def paths_and_scores(best: BestPaths) -> dict[tuple, float]:
    p = best.paths
    return {(int(p.candidate[i]), tuple(p.entities[i].tolist()), tuple(p.relations[i].tolist()),
             tuple(p.inverse[i].tolist())): float(best.scores[i]) for i in range(len(best))}


def per_rank(best: BestPaths) -> dict[tuple[int, int], float]:
    return {(int(c), int(r)): float(s) for c, r, s in zip(best.paths.candidate, best.rank, best.scores, strict=True)}


@pytest.mark.parametrize("max_degree", [None, 8])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_best_many_on_cuda_equals_the_cpu(name: str, max_degree: int | None) -> None:
    data = random_data()
    torch.manual_seed(0)
    model = build_model(name, data, {}, seed=0).eval()
    if name == "pop":
        model.counts.copy_(torch.bincount(data.train.items, minlength=data.num_items).float())
    on_gpu = copy.deepcopy(model).to("cuda")
    cpu, gpu = Explainer(model, data, max_degree=max_degree), Explainer(on_gpu, data, max_degree=max_degree)
    gen = torch.Generator().manual_seed(1)
    users = torch.arange(NUM_USERS)
    items = torch.stack([torch.randperm(NUM_ITEMS, generator=gen)[:4] for _ in range(NUM_USERS)])  # (U, 4)

    every_cpu, every_gpu = cpu.best_many(users, items, k=1000), gpu.best_many(users, items, k=1000)
    assert gpu.finder.device.type == "cuda" and gpu.items.device.type == "cuda"  # searched on the GPU
    assert every_gpu.scores.device.type == "cpu"  # the results come back
    expected, got = paths_and_scores(every_cpu), paths_and_scores(every_gpu)
    assert len(expected) > 50 and got.keys() == expected.keys()  # the same paths
    for key, score in expected.items():
        assert got[key] == pytest.approx(score, abs=1e-4), key
    top_cpu, top_gpu = per_rank(cpu.best_many(users, items, k=3)), per_rank(gpu.best_many(users, items, k=3))
    assert top_gpu.keys() == top_cpu.keys()
    assert all(top_gpu[key] == pytest.approx(score, abs=1e-4) for key, score in top_cpu.items())
