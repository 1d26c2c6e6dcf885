"""The promotion gate (pipeline/steps/promote.py) and the promoted pointer (model_store.current/set_current/serving),
on model version folders written by hand, and `kgrec promote`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import model_store
from pipeline.settings import load_settings
from pipeline.steps.promote import GATE, promote
from tests.conftest import kgrec

MODEL = "kgcn"


def make_version(home: Path, version: int, test: dict[str, float], *, model: str = MODEL,
                 protocol: str = "ranking", run_date: str = "2026-11-21") -> Path:
    """``home/models/<model>/version=N/`` with the config.json and eval.json training would leave."""
    folder = home / "models" / model / f"version={version}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": model, "kg_version": 1, "protocol": protocol,
                                                    "run_date": run_date}))
    (folder / "eval.json").write_text(json.dumps({"protocol": protocol, "test": test, "valid": test}))
    return folder


def ranking(recall: float, ndcg: float = 0.3) -> dict[str, float]:
    return {"recall@20": recall, "ndcg@20": ndcg, "precision@20": recall / 10}


def settings_for(home: Path, **train: Any):  # noqa: ANN201
    return load_settings("sample", overrides={"home": str(home), "train": {"tolerance": 0.05, **train}})


def gate(home: Path, version: int, model: str = MODEL) -> dict[str, Any]:
    return json.loads((home / "models" / model / f"version={version}" / GATE).read_text())


def pointer(home: Path, model: str = MODEL) -> Path:
    return home / "models" / model / model_store.CURRENT


def test_the_gate_promotes_first_better_and_tolerated_versions_and_rejects_a_regression(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_version(tmp_path, 1, ranking(0.40))
    assert model_store.current(tmp_path, MODEL) is None

    first = promote(settings, MODEL, 1)
    assert first.promoted and first.current is None and first.metric == "recall@20" and first.value == 0.40
    assert "first promoted version" in first.reason
    assert pointer(tmp_path).read_text() == "1\n" and model_store.current(tmp_path, MODEL) == 1
    recorded = gate(tmp_path, 1)
    assert recorded["promoted"] is True and recorded["forced"] is False and recorded["current"] is None
    assert recorded["reason"] == first.reason and recorded["tolerance"] == 0.05 and recorded["decided_at"]

    make_version(tmp_path, 2, ranking(0.50))  # better
    better = promote(settings, MODEL, 2)
    assert better.promoted and (better.current, better.current_value) == (1, 0.40)
    assert model_store.current(tmp_path, MODEL) == 2 and model_store.serving(tmp_path, MODEL) == 2
    assert gate(tmp_path, 2)["promoted"] is True and gate(tmp_path, 2)["current"] == 1

    make_version(tmp_path, 3, ranking(0.50 * 0.97))  # 3% worse: within the 5% tolerance
    tolerated = promote(settings, MODEL, 3)
    assert tolerated.promoted and tolerated.reason.startswith("promoted recall@20 0.4850 vs 0.5000 of version=2")
    assert "floor 0.4750 at tolerance 5%" in tolerated.reason
    assert model_store.current(tmp_path, MODEL) == 3

    make_version(tmp_path, 4, ranking(0.485 * 0.90))  # 10% worse: beyond the tolerance
    before = pointer(tmp_path).read_bytes()
    rejected = promote(settings, MODEL, 4)
    assert not rejected.promoted and rejected.current == 3
    assert rejected.reason.startswith("REJECTED: recall@20 0.4365 vs 0.4850 of version=3")
    assert rejected.reason.endswith("; version=3 stays")
    assert pointer(tmp_path).read_bytes() == before
    assert model_store.current(tmp_path, MODEL) == 3 and model_store.serving(tmp_path, MODEL) == 3
    assert model_store.latest(tmp_path, MODEL) == 4  # the rejected version stays on disk
    recorded = gate(tmp_path, 4)
    assert recorded["promoted"] is False and recorded["forced"] is False and recorded["reason"] == rejected.reason
    assert (recorded["value"], recorded["current_value"]) == (pytest.approx(0.4365), 0.485)

    make_version(tmp_path, 5, ranking(0.47))  # the next version is gated against the promoted one, not the rejected
    assert promote(settings, MODEL).current == 3  # version None: the latest
    assert model_store.current(tmp_path, MODEL) == 5


def test_force_promotes_a_regressing_version_and_records_it(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_version(tmp_path, 1, ranking(0.60))
    make_version(tmp_path, 2, ranking(0.20))
    promote(settings, MODEL, 1)
    assert not promote(settings, MODEL, 2).promoted
    assert gate(tmp_path, 2)["forced"] is False

    forced = promote(settings, MODEL, 2, force=True)
    assert forced.promoted and forced.current == 1
    assert forced.reason.startswith("promoted by force despite recall@20 0.2000 vs 0.6000 of version=1")
    assert model_store.current(tmp_path, MODEL) == 2 and model_store.serving(tmp_path, MODEL) == 2
    recorded = gate(tmp_path, 2)
    assert recorded["promoted"] is True and recorded["forced"] is True
    assert gate(tmp_path, 1)["forced"] is False  # the first version's record is its own


def test_the_configured_gate_metric_decides(tmp_path: Path) -> None:
    make_version(tmp_path, 1, ranking(0.40, ndcg=0.30))
    make_version(tmp_path, 2, ranking(0.60, ndcg=0.20))  # better recall, much worse NDCG
    make_version(tmp_path, 3, ranking(0.10, ndcg=0.31))  # much worse recall, better NDCG
    by_ndcg = settings_for(tmp_path, gate_metric="ndcg@20")
    promote(by_ndcg, MODEL, 1)
    rejected = promote(by_ndcg, MODEL, 2)
    assert not rejected.promoted and rejected.metric == "ndcg@20"
    assert (rejected.value, rejected.current_value) == (0.20, 0.30)
    assert "REJECTED: ndcg@20 0.2000 vs 0.3000" in rejected.reason
    assert gate(tmp_path, 2)["metric"] == "ndcg@20"
    passed = promote(by_ndcg, MODEL, 3)
    assert passed.promoted and passed.metric == "ndcg@20" and model_store.current(tmp_path, MODEL) == 3

    by_recall = settings_for(tmp_path)  # the default for ranking would have decided the other way round
    assert promote(by_recall, MODEL, 2).promoted and model_store.current(tmp_path, MODEL) == 2


@pytest.mark.parametrize(("protocol", "metric"), [("ctr", "auc"), ("link_prediction", "mrr"), ("ranking", "recall@20")])
def test_each_protocol_has_its_default_metric(tmp_path: Path, protocol: str, metric: str) -> None:
    settings = settings_for(tmp_path)
    metrics = {"auc": 0.80, "f1": 0.70, "mrr": 0.30, "hits@10": 0.50, "recall@20": 0.40}
    make_version(tmp_path, 1, metrics, model="m", protocol=protocol)
    make_version(tmp_path, 2, {**metrics, metric: metrics[metric] * 0.5,  # only the protocol's metric regresses
                               **{k: v * 2 for k, v in metrics.items() if k != metric}}, model="m", protocol=protocol)
    first = promote(settings, "m", 1)
    assert first.metric == metric and first.value == metrics[metric]
    second = promote(settings, "m", 2)
    assert not second.promoted and second.metric == metric and second.current_value == metrics[metric]
    assert model_store.current(tmp_path, "m") == 1


@pytest.mark.parametrize(("evaluation", "metric"), [
    ({"protocol": "ranking", "test": {"ndcg@20": 0.3}}, "recall@20"),
    ({"protocol": "ctr", "test": {"recall@20": 0.3}}, "auc"),
    ({"protocol": "link_prediction", "valid": {"mrr": 0.3}}, "mrr"),
])
def test_a_version_without_the_metric_is_an_error_naming_the_metric_and_the_file(
        tmp_path: Path, evaluation: dict[str, Any], metric: str) -> None:
    folder = make_version(tmp_path, 1, {})
    (folder / "eval.json").write_text(json.dumps(evaluation))
    with pytest.raises(model_store.ModelStoreError, match=metric) as failure:
        promote(settings_for(tmp_path), MODEL, 1)
    assert str(folder / "eval.json") in str(failure.value)
    assert not pointer(tmp_path).exists() and not (folder / GATE).exists()


def test_a_missing_gate_metric_in_the_current_version_is_an_error(tmp_path: Path) -> None:
    make_version(tmp_path, 1, {"recall@20": 0.4})
    make_version(tmp_path, 2, {"recall@20": 0.5, "ndcg@20": 0.3})
    promote(settings_for(tmp_path), MODEL, 1)
    with pytest.raises(model_store.ModelStoreError, match="ndcg@20") as failure:
        promote(settings_for(tmp_path, gate_metric="ndcg@20"), MODEL, 2)
    assert str(tmp_path / "models" / MODEL / "version=1" / "eval.json") in str(failure.value)
    assert model_store.current(tmp_path, MODEL) == 1


def test_a_version_without_eval_json_or_an_unknown_version_is_an_error(tmp_path: Path) -> None:
    folder = make_version(tmp_path, 1, ranking(0.4))
    (folder / "eval.json").unlink()
    with pytest.raises(model_store.ModelStoreError,
                       match=r"version=1 has no test metric in .*eval.json \(has: no evaluation\)"):
        promote(settings_for(tmp_path), MODEL, 1)
    with pytest.raises(model_store.ModelStoreError, match=r"has no version 7 \(has: \[1\]\)"):
        promote(settings_for(tmp_path), MODEL, 7)
    with pytest.raises(model_store.ModelStoreError, match="no trained 'other' model"):
        promote(settings_for(tmp_path), "other")


def test_re_promoting_the_current_version_changes_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_version(tmp_path, 1, ranking(0.40))
    make_version(tmp_path, 2, ranking(0.45))
    promote(settings, MODEL, 1)
    promote(settings, MODEL, 2)
    before = pointer(tmp_path).read_bytes()
    folders = sorted(p.name for p in (tmp_path / "models" / MODEL).iterdir())

    again = promote(settings, MODEL, 2)
    assert again.promoted and again.reason == "already promoted (recall@20 0.4500)"
    assert again.summary() == "promote: kgcn version=2: already promoted (recall@20 0.4500)"
    assert pointer(tmp_path).read_bytes() == before and model_store.current(tmp_path, MODEL) == 2
    assert sorted(p.name for p in (tmp_path / "models" / MODEL).iterdir()) == folders
    assert gate(tmp_path, 2)["promoted"] is True


def test_re_promoting_keeps_the_recorded_decision(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    make_version(tmp_path, 1, ranking(0.60))
    make_version(tmp_path, 2, ranking(0.20))
    promote(settings, MODEL, 1)
    promote(settings, MODEL, 2, force=True)
    decision = (tmp_path / "models" / MODEL / "version=2" / GATE).read_bytes()
    promote(settings, MODEL, 2)  # e.g. a re-run of the kg_train DAG, whose train task reuses version 2
    assert (tmp_path / "models" / MODEL / "version=2" / GATE).read_bytes() == decision


def test_serving_is_the_promoted_version_else_the_latest(tmp_path: Path) -> None:
    with pytest.raises(model_store.ModelStoreError, match=f"no trained '{MODEL}' model"):
        model_store.serving(tmp_path, MODEL)
    for version in (1, 2, 3):
        make_version(tmp_path, version, ranking(0.4))
    (tmp_path / "models" / MODEL / "version=4.partial").mkdir()  # an interrupted run is not a version
    assert model_store.current(tmp_path, MODEL) is None
    assert model_store.serving(tmp_path, MODEL) == 3

    model_store.set_current(tmp_path, MODEL, 2)
    assert pointer(tmp_path).read_text() == "2\n"
    assert model_store.current(tmp_path, MODEL) == 2 and model_store.serving(tmp_path, MODEL) == 2
    assert not list((tmp_path / "models" / MODEL).glob(".*tmp"))  # the pointer was replaced, no temp file left
    with pytest.raises(model_store.ModelStoreError, match=r"has no version 9 \(has: \[1, 2, 3\]\)"):
        model_store.set_current(tmp_path, MODEL, 9)
    with pytest.raises(model_store.ModelStoreError):
        model_store.set_current(tmp_path, MODEL, 4)  # the partial folder cannot be promoted
    assert model_store.current(tmp_path, MODEL) == 2
    assert model_store.current(tmp_path, "other") is None


def test_kgrec_promote_exits_0_when_promoted_and_1_when_rejected(tmp_path: Path) -> None:
    env = {"KGREC_HOME": str(tmp_path)}
    make_version(tmp_path, 1, ranking(0.50))
    make_version(tmp_path, 2, ranking(0.30))

    first = kgrec("promote", "--model", MODEL, "--version", "1", env=env)
    assert first.returncode == 0, first.stderr
    assert "promote: kgcn version=1: promoted: the first promoted version (recall@20 0.5000)" in first.stdout
    rejected = kgrec("promote", "--model", MODEL, "--version", "2", env=env)
    assert rejected.returncode == 1, rejected.stderr
    assert "promote: kgcn version=2: REJECTED: recall@20 0.3000 vs 0.5000 of version=1" in rejected.stdout
    assert "version=1 stays" in rejected.stdout
    assert model_store.current(tmp_path, MODEL) == 1 and gate(tmp_path, 2)["promoted"] is False

    forced = kgrec("promote", "--model", MODEL, "--version", "2", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "promoted by force despite" in forced.stdout
    assert model_store.current(tmp_path, MODEL) == 2 and gate(tmp_path, 2)["forced"] is True
