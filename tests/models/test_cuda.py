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
TF32 = {"rtol": 1e-2, "atol": 2e-3}  # TF32 keeps 10 mantissa bits: scores agree with the CPU's to about 1e-3


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
    with torch.no_grad():  # TF32 products on the GPU: agreement to TF32's precision, not fp32's
        on_gpu = model.score_all(users.cuda())
        torch.testing.assert_close(on_gpu.cpu(), cpu.score_all(users), **TF32)
        grid = model.score(users.cuda().repeat_interleave(model.num_items), torch.arange(model.num_items).cuda()
                           .repeat(NUM_USERS))
        torch.testing.assert_close(on_gpu, grid.view(NUM_USERS, -1), **TF32)
    gpu_paths, cpu_paths = Explainer(model, data).explain(0, 2, k=5), Explainer(cpu, data).explain(0, 2, k=5)
    assert {p.hops for p in gpu_paths} == {p.hops for p in cpu_paths} and gpu_paths
    assert sorted(p.score for p in gpu_paths) == pytest.approx(sorted(p.score for p in cpu_paths), rel=TF32["rtol"],
                                                               abs=TF32["atol"])


def test_a_failed_capture_leaves_eager_training_and_dropout_working(caplog) -> None:
    """A loss that reads a value back to the host cannot be captured: the phase trains eagerly, and the random ops
    after it (KGAT's dropout) still run."""
    from models.cuda_graphs import GraphedStep

    model = build_model("kgat", tiny_data(), {}, seed=0).cuda().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, fused=True, capturable=True)
    batch = next(iter(fit_batches(model)))

    def syncing_loss(b):  # noqa: ANN001, ANN202
        loss = model.loss(b)
        return loss * float(loss > -1)  # a host read: illegal in a capture

    step = GraphedStep("cf", syncing_loss, optimizer, lambda: torch.autocast("cuda", enabled=False))
    with caplog.at_level(logging.WARNING, logger="kgrec.train"):
        for _ in range(4):
            assert step.step(batch) is None or step.warm <= 2
    assert step.failed and "capture failed" in caplog.text and "could not reset" not in caplog.text
    assert torch.isfinite(model.loss(batch))  # dropout draws again: the generator is usable


def fit_batches(model):  # noqa: ANN001, ANN201
    from models.sampling import NegativeSampler, PairSet, interaction_batches

    data = tiny_data()
    sampler = NegativeSampler(PairSet(data.train.users, data.train.items, data.num_items), data.num_users,
                              torch.arange(data.num_items)).to("cuda")
    return interaction_batches(data.train.users.cuda(), data.train.items.cuda(), sampler, 2,
                               torch.Generator(device="cuda").manual_seed(0))


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
