"""On CUDA (marked ``gpu``: skipped without a GPU, run with ``pytest -m gpu``): every registered model trains,
validates, evaluates under both protocols, scores and explains on the GPU with the results of its CPU copy; CUDA
graphs train as eager steps do; bf16 reaches fp32's validation metric."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models import MODELS
from models.data import RecData
from models.explain import Explainer
from models.fit import build_model, evaluate, evaluate_links, fit
from models.trainer import TrainConfig
from tests.models.cases import NUM_USERS, tiny_data
from tests.models.test_precision import BF16, TOLERANCE, _users_below

pytestmark = pytest.mark.gpu

CONFIG = TrainConfig(epochs=3, batch_size=2, lr=0.05, patience=100, seed=7, device="cuda")


def _cpu_copy(name: str, model: torch.nn.Module, data: RecData) -> torch.nn.Module:
    cpu = build_model(name, data, {}, seed=CONFIG.seed)
    cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    return cpu.eval()


def _dense_triples() -> list[tuple[int, int, int]]:
    """60 distinct triples over tiny_data's 7 entities and 2 relations: enough for a held-out 5% to exist."""
    every = [(h, r, t) for h in range(7) for r in range(2) for t in range(7) if h != t]
    keep = torch.randperm(len(every), generator=torch.Generator().manual_seed(0))[:60]
    return [every[i] for i in keep.tolist()]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_trains_evaluates_scores_and_explains_on_cuda(name: str, caplog) -> None:
    data = tiny_data(_dense_triples()) if MODELS[name].kind == "triples" else tiny_data()
    with caplog.at_level(logging.WARNING, logger="kgrec.train"):
        fitted = fit(name, data, protocol="ranking", hyper={}, config=CONFIG, progress=False)
    assert "capture failed" not in caplog.text
    model = fitted.model.eval()
    assert all(t.device.type == "cuda" for t in [*model.parameters(), *model.buffers()])
    if model.trainable and name in {n for n, c in MODELS.items() if c.graph_phases}:
        assert sum(fitted.result.graph_replays.values()) > 0, "the graphed phases never replayed a graph"
    if model.kind == "triples":
        assert 0 < evaluate_links(model, data, CONFIG)["test"]["mrr"] <= 1
        return
    for protocol in ("ranking", "ctr"):
        metrics = evaluate(model, data, protocol, CONFIG)["test"]
        assert all(0 <= v <= 1 for k, v in metrics.items() if k in ("recall@20", "ndcg@20", "auc", "f1")), metrics
    cpu = _cpu_copy(name, model, data)
    users = torch.arange(NUM_USERS)
    with torch.no_grad():
        on_gpu = model.score_all(users.cuda())
        torch.testing.assert_close(on_gpu.cpu(), cpu.score_all(users), rtol=1e-4, atol=1e-4)
        grid = model.score(users.cuda().repeat_interleave(model.num_items), torch.arange(model.num_items).cuda()
                           .repeat(NUM_USERS))
        torch.testing.assert_close(on_gpu, grid.view(NUM_USERS, -1), rtol=1e-4, atol=1e-4)
    gpu_paths, cpu_paths = Explainer(model, data).explain(0, 2, k=5), Explainer(cpu, data).explain(0, 2, k=5)
    assert [p.hops for p in gpu_paths] == [p.hops for p in cpu_paths] and gpu_paths
    assert [p.score for p in gpu_paths] == pytest.approx([p.score for p in cpu_paths], rel=1e-4, abs=1e-4)


@pytest.fixture(scope="module")
def music(shared_data: Path) -> RecData:
    from kg_build.benchmarks import load_kgcn_music
    from kg_build.splits import SplitConfig
    from pipeline.steps.train import model_inputs

    kg = load_kgcn_music(shared_data / "kgcn-music", SplitConfig(valid=0.1, test=0.1, seed=2026))
    return _users_below(model_inputs(kg), 600)


@pytest.mark.shared
@pytest.mark.parametrize("name", sorted(n for n, c in MODELS.items() if c.graph_phases and n != "pop"))
def test_cuda_graphs_train_as_the_eager_steps_do(name: str, music: RecData) -> None:
    """Same seed, same batches: the graph replays give the eager run's losses and validation (up to the GPU's
    non-deterministic atomic sums), so every replay read its own batch."""
    from models.config import hyperparameters

    hyper, config = hyperparameters(name, dataset="kgcn-music")
    config = replace(config, epochs=3, patience=100, device="cuda")
    graphed = fit(name, music, protocol="ranking", hyper=hyper, config=config, progress=False).result
    eager = fit(name, music, protocol="ranking", hyper=hyper, config=replace(config, cuda_graphs=False),
                progress=False).result
    assert sum(graphed.graph_replays.values()) > 0 and not eager.graph_replays
    for a, b in zip(graphed.history, eager.history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=2e-3), (a["loss"], b["loss"])
    assert graphed.best_score == pytest.approx(eager.best_score, abs=0.01)


@pytest.mark.shared
@pytest.mark.parametrize("name", [n for n in BF16 if n != "pop"])
def test_bf16_on_cuda_reaches_the_fp32_validation_metric(name: str, music: RecData) -> None:
    from models.config import hyperparameters

    hyper, config = hyperparameters(name, dataset="kgcn-music")
    config = replace(config, epochs=4, patience=100, device="cuda")
    best = {p: fit(name, music, protocol="ranking", hyper=hyper, config=replace(config, precision=p),
                   progress=False).result.best_score for p in ("fp32", "bf16")}
    assert best["bf16"] >= best["fp32"] - TOLERANCE, best
