"""``kgrec bench models``: several seeds per model, summarised as mean ± std, ours against RecBole's."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bench.models import bench, has_peer, markdown, model_spec, summary


def _row(model: str, implementation: str, seed: int, recall: float, epoch_s: float, **extra) -> dict:
    return {"dataset": "kgcn-music", "protocol": "ranking", "model": model, "implementation": implementation,
            "seed": seed, "metrics": {"recall@20": recall, "ndcg@20": recall / 2}, "train_s_per_epoch": epoch_s,
            "eval_s": 2 * epoch_s, "epochs": 10 + seed, "peak_mem_mb": 100.0 * seed, **extra}


ROWS = [
    _row("kgcn", "kgrec", 1, 0.20, 0.5, cold_metrics={"recall@20": 0.1}),
    _row("kgcn", "recbole", 1, 0.10, 2.0),
    _row("kgcn", "kgrec", 2, 0.30, 0.7, cold_metrics={"recall@20": 0.3}),
    _row("kgcn", "recbole", 2, 0.20, 2.0),
    _row("bprmf", "kgrec", 1, 0.05, 0.1),
]


def test_summary_gives_mean_and_sample_std_per_model_and_implementation() -> None:
    groups = summary(ROWS)
    assert [(g["model"], g["implementation"], g["runs"]) for g in groups] == [
        ("kgcn", "kgrec", 2), ("kgcn", "recbole", 2), ("bprmf", "kgrec", 1)]
    ours = groups[0]
    assert ours["mean"]["recall@20"] == pytest.approx(0.25)
    assert ours["std"]["recall@20"] == pytest.approx(0.0707107, abs=1e-6)  # sqrt(((0.05)^2 * 2) / 1)
    assert ours["mean"]["cold_recall@20"] == pytest.approx(0.2)
    assert ours["train_s_per_epoch"] == pytest.approx(0.6) and ours["eval_s"] == pytest.approx(1.2)
    assert ours["epochs"] == pytest.approx(11.5) and ours["peak_mem_mb"] == 200.0
    assert groups[2]["std"]["recall@20"] == 0.0


def test_markdown_shows_mean_std_and_ours_over_recbole() -> None:
    text = markdown(ROWS)
    assert "| kgcn-music | ranking | kgcn | kgrec | 2 | recall@20 0.2500 ± 0.0707, ndcg@20 0.1250 ± 0.0354 | " \
           "0.2000 ± 0.1414 | 0.60 | 1.20 | 11.5 | 200 |" in text
    assert "| kgcn-music | ranking | bprmf | kgrec | 1 | recall@20 0.0500, ndcg@20 0.0250 |  |" in text
    # kgcn ran on both: recall 0.25 / 0.15, s/epoch 0.6 / 2.0, eval 1.2 / 4.0; bprmf has no RecBole row.
    assert "| kgcn-music | ranking | kgcn | recall@20 1.67 | 0.30 | 0.30 |" in text
    assert "| bprmf | recall@20" not in text


def test_each_seed_is_its_own_run(shared_data: Path) -> None:
    rows = bench(["kgcn-music"], "ranking", ["bprmf"], shared=shared_data.parent, settings=None, epochs=1,
                 device="cpu", seeds=2)
    assert [(r["model"], r["implementation"], r["seed"]) for r in rows] == [
        ("bprmf", "kgrec", 2026), ("bprmf", "kgrec", 2027)]
    assert rows[0]["config"]["train"]["seed"] == 2026 and rows[1]["config"]["train"]["seed"] == 2027
    assert rows[0]["metrics"] != rows[1]["metrics"]  # another initialisation and training order
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        bench(["kgcn-music"], "ranking", ["bprmf"], shared=shared_data.parent, settings=None, seeds=0)


def test_a_model_spec_names_an_ablation_row_with_its_overrides() -> None:
    assert model_spec("kgat") == ("kgat", {})
    assert model_spec("kgif:fusion=false:projection=matrix:layers=[32]") == (
        "kgif", {"fusion": False, "projection": "matrix", "layers": [32]})
    assert has_peer("kgat") and not has_peer("kgat:dropout=0.2") and not has_peer("pathrec")
    with pytest.raises(ValueError, match="got 'dropout'"):
        model_spec("kgat:dropout")


def test_an_ablation_row_trains_with_its_overrides(shared_data: Path) -> None:
    rows = bench(["kgcn-music"], "ranking", ["bprmf:embedding_dim=8:train.lr=0.01"], shared=shared_data.parent,
                 settings=None, epochs=1, device="cpu")
    assert rows[0]["model"] == "bprmf:embedding_dim=8:train.lr=0.01"
    assert rows[0]["config"]["hyper"]["embedding_dim"] == 8 and rows[0]["config"]["train"]["lr"] == 0.01
