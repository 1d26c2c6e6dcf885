"""The RecBole peer without RecBole: config mapping, the job runner's errors, and the job script's own helpers."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from pipeline.bench import recbole_job
from pipeline.bench.recbole_peer import (
    JOB_SCRIPT,
    MODEL_KEYS,
    RECBOLE_MODELS,
    PeerError,
    recbole_config,
    run_peer,
)

HYPER = {
    "embedding_dim": 32, "lr": 0.005, "batch_size": 1024, "epochs": 40, "patience": 5, "l2": 1e-5,
    "neighbors": 8, "hops": 2, "aggregator": "concat", "ls_weight": 0.3, "memory": 32, "kge_weight": 0.02,
}
COMMON = {"learning_rate": 0.005, "train_batch_size": 1024, "epochs": 40, "stopping_step": 5}


def _fake_python(tmp_path: Path, body: str) -> Path:
    """An executable standing in for the peer venv's python: a shell script with ``body``."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _run(python: Path, tmp_path: Path, timeout_s: float = 30) -> dict:
    return run_peer(python, data_path=tmp_path, dataset="toy", model="kgcn", protocol="ranking",
                    config={"epochs": 1}, out_json=tmp_path / "out" / "result.json", timeout_s=timeout_s)


def test_every_model_maps_to_a_recbole_model_with_keys() -> None:
    assert set(RECBOLE_MODELS.values()) == set(MODEL_KEYS)
    assert RECBOLE_MODELS["bprmf"] == "BPR" and RECBOLE_MODELS["ripplenet"] == "RippleNet"


def test_kgcn_and_kgnnls_keys() -> None:
    kgcn = {**COMMON, "embedding_size": 32, "reg_weight": 1e-5, "neighbor_sample_size": 8, "n_iter": 2,
            "aggregator": "concat"}
    assert recbole_config("kgcn", HYPER, "ranking") == kgcn
    assert recbole_config("kgnnls", HYPER, "ctr") == {**kgcn, "ls_weight": 0.3}


def test_ripplenet_keys() -> None:
    # RippleNet's reg_weight weighs the L2 term and kg_weight the KGE term (its yaml's comments swap them).
    # It trains pointwise: its batch counts the positives and their negatives as rows, so it is twice ours.
    assert recbole_config("ripplenet", HYPER, "ranking") == {
        **COMMON, "train_batch_size": 2048, "embedding_size": 32, "reg_weight": 1e-5, "n_hop": 2, "n_memory": 32,
        "kg_weight": 0.02,
    }


def test_unknown_hyperparameters_are_dropped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kgrec.bench"):
        config = recbole_config("bprmf", {"embedding_dim": 16, "l2": 0.1, "hops": 2}, "ranking")
    assert config == {"embedding_size": 16}
    assert "l2=0.1" in caplog.text and "hops=2" in caplog.text


def test_recbole_names_are_accepted_and_bad_names_rejected() -> None:
    assert recbole_config("KGCN", {"hops": 3}, "ranking") == {"n_iter": 3}
    with pytest.raises(ValueError, match="no RecBole peer for model 'lightgcn'"):
        recbole_config("lightgcn", {}, "ranking")
    with pytest.raises(ValueError, match="unknown protocol 'auc'"):
        recbole_config("kgcn", {}, "auc")


def test_run_peer_raises_with_the_last_lines_when_the_job_fails(tmp_path: Path) -> None:
    body = 'for i in $(seq 1 60); do echo "line $i"; done\necho "ValueError: boom" >&2\nexit 1'
    python = _fake_python(tmp_path, body)
    with pytest.raises(PeerError) as caught:
        _run(python, tmp_path)
    message = str(caught.value)
    assert "recbole KGCN on toy (ranking) failed with exit status 1" in message
    assert "ValueError: boom" in message and "line 60" in message
    assert "line 21\n" not in message  # only the last 40 lines


def test_run_peer_raises_when_the_interpreter_is_missing(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match="cannot start"):
        _run(tmp_path / "no-such-python", tmp_path)


def test_run_peer_raises_on_timeout(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, "echo started\nsleep 30")
    started = time.monotonic()
    with pytest.raises(PeerError, match=r"timed out after 1 s; last output:\nstarted"):
        _run(python, tmp_path, timeout_s=1)
    assert time.monotonic() - started < 10


def test_run_peer_raises_when_no_result_is_written(tmp_path: Path) -> None:
    with pytest.raises(PeerError, match="wrote no readable result"):
        _run(_fake_python(tmp_path, "echo done"), tmp_path)


def test_run_peer_passes_the_arguments_and_returns_the_result(tmp_path: Path) -> None:
    script = tmp_path / "fake_job.py"
    script.write_text(
        "import json, os, sys\n"
        "args = dict(zip(sys.argv[2::2], sys.argv[3::2]))\n"
        "config = json.load(open(args['--config']))\n"
        "result = {'args': args, 'config': config, 'env': os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}\n"
        "open(args['--out'], 'w').write(json.dumps(result))\n",
        encoding="utf-8",
    )
    python = _fake_python(tmp_path, f'exec "{sys.executable}" "{script}" "$@"')
    result = _run(python, tmp_path)
    assert result["config"] == {"epochs": 1} and result["env"] == "1"
    assert result["args"]["--model"] == "KGCN" and result["args"]["--protocol"] == "ranking"
    assert result["args"]["--data-path"] == str(tmp_path) and result["args"]["--dataset"] == "toy"


def test_job_help_runs_without_recbole() -> None:
    done = subprocess.run([sys.executable, str(JOB_SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--data-path" in done.stdout and "{ctr,ranking}" in done.stdout
    missing = subprocess.run([sys.executable, str(JOB_SCRIPT), "--model", "BPR"], capture_output=True, check=False)
    assert missing.returncode == 2


def test_job_config_enforces_the_split_and_drops_the_time_field(tmp_path: Path) -> None:
    folder = tmp_path / "toy"
    folder.mkdir()
    yaml_file = folder / "toy.yaml"
    yaml_file.write_text(
        "TIME_FIELD: timestamp\n"
        "load_col:\n  inter: [user_id, item_id, rating, timestamp]\n  link: [item_id, entity_id]\n",
        encoding="utf-8",
    )
    config = recbole_job.job_config(yaml_file, "ctr", {"epochs": 2, "use_gpu": True}, tmp_path)
    assert config["load_col"] == {"inter": ["user_id", "item_id", "rating"], "link": ["item_id", "entity_id"]}
    assert config["benchmark_filename"] == ["train", "valid", "test"] and config["data_path"] == str(tmp_path)
    assert config["eval_args"]["mode"] == "uni1" and config["valid_metric"] == "GAUC"
    assert config["epochs"] == 2 and config["use_gpu"] is False and config["seed"] == 2026


def test_auc_matches_pairwise_counting_with_ties() -> None:
    rng = np.random.default_rng(7)
    score = rng.integers(0, 5, size=60).astype(float)  # many ties
    label = rng.random(60) < 0.4
    pairs = [(p, n) for p, n in product(score[label], score[~label])]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert recbole_job.auc(score, label) == pytest.approx(expected)
    assert recbole_job.auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5


def test_f1() -> None:
    predicted = np.array([True, True, False, False])
    label = np.array([True, False, True, False])
    assert recbole_job.f1(predicted, label) == pytest.approx(0.5)
    assert recbole_job.f1(np.zeros(2, dtype=bool), np.zeros(2, dtype=bool)) == 0.0


def test_negatives_avoid_the_users_items() -> None:
    users = np.array([1, 1, 2, 3] * 50)
    histories = {1: {1, 2, 3}, 2: {4}}
    negatives = recbole_job.sample_negatives(users, histories, 6, np.random.default_rng(0))
    for user, item in zip(users.tolist(), negatives.tolist(), strict=True):
        assert 1 <= item <= 5 and item not in histories.get(user, set())
    assert set(negatives[users == 1].tolist()) == {4, 5}
    with pytest.raises(ValueError, match="every item"):
        recbole_job.sample_negatives(np.array([1]), {1: {1, 2}}, 3, np.random.default_rng(0))
