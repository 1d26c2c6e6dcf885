"""Training precision: bf16 autocast for the models that allow it (their loss and backward run under it on the CPU,
and they reach their fp32 validation metric in it), a clear refusal for the others, and fp32-only custom ops."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from models import MODELS
from models import nn as kgnn
from models.base import KGEModel
from models.data import RecData
from models.fit import build_model, fit
from models.sampling import triple_batches
from models.trainer import TrainConfig
from tests.models.cases import batch, tiny_data, triple_batch

BF16 = sorted(name for name, cls in MODELS.items() if "bf16" in cls.precisions)
FP32_ONLY = sorted(set(MODELS) - set(BF16))
TOLERANCE = 0.01  # bf16 may trail fp32's best validation Recall@20 by this much (kgcn-music's seed noise: ±0.015)


def test_the_zoo_declares_its_precisions() -> None:
    assert BF16 == ["bprmf", "cke", "kgcn", "kgnnls", "pop", "ripplenet"]
    assert all(cls.precisions[0] == "fp32" for cls in MODELS.values())


@pytest.mark.parametrize("name", BF16)
def test_loss_and_backward_under_cpu_bf16_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, tiny_data(), {}, seed=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(batch())
        if model.kg_phase is not None:
            loss = loss + model.kg_loss(triple_batch(model))
    assert loss.dim() == 0 and torch.isfinite(loss)
    if not model.trainable:
        return
    loss.backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.dtype == param.dtype, pname
        assert bool(torch.isfinite(param.grad).all()), pname


@pytest.mark.parametrize("name", FP32_ONLY)
def test_the_trainer_refuses_bf16_for_the_other_models(name: str) -> None:
    config = TrainConfig(epochs=1, batch_size=4, device="cpu", precision="bf16")
    with pytest.raises(ValueError, match=rf"does not train in bf16 \(it trains in fp32\)"):
        fit(name, tiny_data(), protocol="ranking", hyper={}, config=config, progress=False)


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        TrainConfig(precision="fp16")


def test_edge_matmul_takes_bf16_inputs_and_gives_fp32_gradients_of_their_dtype() -> None:
    gen = torch.Generator().manual_seed(0)
    src, dst = torch.randint(5, (2, 12), generator=gen)
    edges = kgnn.EdgeIndex(src, dst, 5)
    weight = torch.rand(12, generator=gen).requires_grad_()
    x = torch.rand(5, 3, generator=gen).bfloat16().requires_grad_()  # what a bf16 layer hands on
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = kgnn.edge_matmul(weight, edges, x)
    assert out.dtype == torch.float32
    (out.bfloat16().sum()).backward()  # a bf16 consumer: the incoming gradient is cast back to fp32 for the op
    assert weight.grad.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    expected = kgnn.scatter_sum(weight[:, None].detach() * x.detach().float()[src], dst, 5)
    torch.testing.assert_close(out.detach(), expected)


def _users_below(data: RecData, n: int) -> RecData:
    """``data`` with its first ``n`` users only (every item and the whole KG kept)."""
    splits = {}
    for name, pairs in data.splits.items():
        keep = pairs.users < n
        splits[name] = type(pairs)(pairs.users[keep], pairs.items[keep])
    return replace(data, num_users=n, splits=splits)


@pytest.fixture(scope="module")
def music(shared_data: Path) -> RecData:
    from kg_build.benchmarks import load_kgcn_music
    from kg_build.splits import SplitConfig
    from pipeline.steps.train import model_inputs

    kg = load_kgcn_music(shared_data / "kgcn-music", SplitConfig(valid=0.1, test=0.1, seed=2026))
    return _users_below(model_inputs(kg), 300)


@pytest.mark.shared
@pytest.mark.parametrize("name", [n for n in BF16 if n != "pop"])
def test_bf16_reaches_the_fp32_validation_metric(name: str, music: RecData) -> None:
    """Three epochs on 300 kgcn-music users, same seed: bf16's best validation Recall@20 is within TOLERANCE of
    fp32's, and both learned (above the untrained first epoch's)."""
    from models.config import hyperparameters

    hyper, config = hyperparameters(name, dataset="kgcn-music")
    config = replace(config, epochs=3, patience=100, device="cpu", batch_size=min(config.batch_size, 256))
    best = {}
    for precision in ("fp32", "bf16"):
        result = fit(name, music, protocol="ranking", hyper=hyper, config=replace(config, precision=precision),
                     progress=False).result
        best[precision] = result.best_score
        assert result.best_score > result.history[0]["valid"]["recall@20"] or result.best_epoch == 0, precision
    assert best["bf16"] >= best["fp32"] - TOLERANCE, best
