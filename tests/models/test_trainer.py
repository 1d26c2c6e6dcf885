"""The trainer: checkpoints, resume equal to an uninterrupted run, early stopping, the metrics file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from models.fit import fit
from models.trainer import Phase, TrainConfig, Trainer, resolve_device
from tests.models.cases import tiny_data

CONFIG = TrainConfig(epochs=6, batch_size=2, lr=0.05, patience=100, seed=7, device="cpu")
HYPER = {"embedding_dim": 4, "neighbors": 2}


def _fit(out: Path | None, config: TrainConfig = CONFIG, resume: bool = False):
    return fit("kgcn", tiny_data(), protocol="ranking", hyper=HYPER, config=config, out_dir=out, resume=resume,
               progress=False)


def test_files_and_checkpoint_load_with_weights_only(tmp_path: Path) -> None:
    fitted = _fit(tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == list(range(6))
    assert all({"loss", "train_s", "valid", "eval_s"} <= set(line) for line in lines)
    best = torch.load(tmp_path / "model.pt", weights_only=True)
    for name, value in fitted.model.state_dict().items():
        assert torch.equal(best[name], value), name
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 5
    assert fitted.result.best_score == max(line["valid"]["recall@20"] for line in lines)


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tmp_path: Path) -> None:
    straight = _fit(tmp_path / "straight")
    _fit(tmp_path / "resumed", config=TrainConfig(**{**CONFIG.__dict__, "epochs": 3}))
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:  # a line written after the last checkpoint
        f.write(json.dumps({"epoch": 3, "partial": True}) + "\n")
    resumed = _fit(tmp_path / "resumed", resume=True)
    lines = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == list(range(6)) and not any("partial" in line for line in lines)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert [h["loss"] for h in straight.result.history[3:]] == [h["loss"] for h in resumed.result.history]


def test_seeded_runs_are_identical_on_cpu() -> None:
    a, b = _fit(None), _fit(None)
    assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items())


def test_early_stopping_after_patience_epochs_without_improvement() -> None:
    model = torch.nn.Linear(1, 1)
    scores = iter([0.5, 0.6, 0.55, 0.58, 0.6, 0.9])
    phase = Phase("noop", lambda g: [torch.zeros(1)], lambda batch: model(batch).sum() * 0, 1)
    trainer = Trainer(model, [phase], lambda m: {"m": next(scores)}, metric="m",
                      config=TrainConfig(epochs=10, patience=3, device="cpu"), progress=False)
    result = trainer.fit()
    assert (result.best_epoch, result.best_score, result.epochs) == (1, 0.6, 5)


def test_a_diverging_loss_stops_training_with_a_clear_error() -> None:
    model = torch.nn.Linear(1, 1)
    phase = Phase("cf", lambda g: [torch.zeros(1)], lambda batch: model(batch).sum() + float("nan"), 1)
    trainer = Trainer(model, [phase], lambda m: {"m": 0.0}, metric="m", config=TrainConfig(device="cpu"),
                      progress=False)
    with pytest.raises(FloatingPointError, match="epoch 0: cf loss is nan"):
        trainer.fit()


def test_device_choice() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_kgat_alternates_a_cf_and_a_kg_phase_and_keeps_the_attention_of_its_best_epoch(tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, batch_size=4, lr=0.05, patience=100, seed=3, device="cpu")
    fitted = fit("kgat", tiny_data(), protocol="ranking", hyper={"embedding_dim": 4, "layers": [3]}, config=config,
                 out_dir=tmp_path, progress=False)
    assert all(set(h["loss"]) == {"cf", "kg"} for h in fitted.result.history)
    best = torch.load(tmp_path / "model.pt", weights_only=True)
    model = fitted.model
    assert torch.equal(best["attention"], model.attention)
    model.on_epoch_end()  # the attention of the kept weights: recomputing it changes nothing
    assert torch.allclose(best["attention"], model.attention)


def test_several_negatives_train_the_models_that_take_them_and_are_refused_by_the_others() -> None:
    config = TrainConfig(epochs=2, batch_size=4, lr=0.05, patience=100, seed=3, device="cpu", negatives=3)
    hyper = {"embedding_dim": 4, "kg_embedding_dim": 2, "cf_loss": "softmax"}
    fitted = fit("cke", tiny_data(), protocol="ranking", hyper=hyper, config=config, progress=False)
    assert all(h["loss"]["cf+kg"] > 0 for h in fitted.result.history)
    with pytest.raises(ValueError, match=r"KGCN trains on one negative per positive, got train.negatives=3; "
                                         r"models that take several: bprmf, cke"):
        _fit(None, config)
    with pytest.raises(ValueError, match="negatives >= 1"):
        TrainConfig(negatives=0)


def test_cke_trains_its_kg_loss_in_every_interaction_batch() -> None:
    config = TrainConfig(epochs=2, batch_size=4, lr=0.05, patience=100, seed=3, device="cpu")
    fitted = fit("cke", tiny_data(), protocol="ranking", hyper={"embedding_dim": 4, "kg_embedding_dim": 2},
                 config=config, progress=False)
    assert all(set(h["loss"]) == {"cf+kg"} for h in fitted.result.history)
