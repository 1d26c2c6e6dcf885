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
    PEER_PATCHES,
    PEER_SPECS,
    RECBOLE_MODELS,
    STAMP,
    Patch,
    PeerError,
    apply_patch,
    ensure_venv,
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


def test_kgat_keys() -> None:
    # RecBole's KGAT.yaml: layers excludes the input size (as ours); its aggregator spellings are ours.
    hyper = {"embedding_dim": 64, "kg_embedding_dim": 32, "layers": [64, 32, 16], "dropout": 0.1, "l2": 1e-5,
             "aggregator": "graphsage", "lr": 0.005, "batch_size": 1024, "epochs": 40, "patience": 5}
    assert recbole_config("kgat", hyper, "ranking") == {
        **COMMON, "embedding_size": 64, "kg_embedding_size": 32, "layers": [64, 32, 16], "mess_dropout": 0.1,
        "reg_weight": 1e-5, "aggregator_type": "graphsage",
    }


def test_cke_keys_merge_the_two_l2_weights_in_recboles_order(caplog: pytest.LogCaptureFixture) -> None:
    # CKE.py: reg_weights[0] weighs the user/item embeddings' L2, reg_weights[1] the KG embeddings'.
    hyper = {"embedding_dim": 64, "kg_embedding_dim": 32, "l2": 1e-5, "kg_l2": 1e-3, "kg_weight": 1.0,
             "lr": 0.005, "batch_size": 1024, "epochs": 40, "patience": 5}
    with caplog.at_level(logging.INFO, logger="kgrec.bench"):
        config = recbole_config("cke", hyper, "ranking")
    assert config == {**COMMON, "embedding_size": 64, "kg_embedding_size": 32, "reg_weights": [1e-5, 1e-3]}
    assert caplog.text == ""  # kg_weight = 1 is what RecBole's CKE does: nothing to say


def test_cke_kg_weight_other_than_one_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kgrec.bench"):
        config = recbole_config("CKE", {"l2": 0.1, "kg_l2": 0.2, "kg_weight": 0.5}, "ctr")
    assert config == {"reg_weights": [0.1, 0.2]}
    assert "kg_weight=0.5" in caplog.text and "fixes it at 1" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_a_softmax_loss_over_several_negatives_is_named_in_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kgrec.bench"):
        config = recbole_config("cke", {"embedding_dim": 8, "cf_loss": "softmax", "negatives": 64}, "ranking")
        assert recbole_config("bprmf", {"cf_loss": "bpr", "negatives": 1}, "ranking") == {}
    assert config == {"embedding_size": 8}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # the BPR-MF defaults are what RecBole's BPR does: nothing to say
    assert "cf_loss='softmax'" in warnings[0] and "fixes it at 'bpr'" in warnings[0]
    assert "not negatives=64" in warnings[1] and "64 times as long" in warnings[1]


def test_cke_needs_both_l2_weights_or_neither() -> None:
    assert recbole_config("cke", {"embedding_dim": 8}, "ranking") == {"embedding_size": 8}
    with pytest.raises(ValueError, match="reg_weights takes l2, kg_l2 together; missing kg_l2"):
        recbole_config("cke", {"l2": 1e-5}, "ranking")


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


def test_apply_patch_is_idempotent_and_names_the_file_it_cannot_patch(tmp_path: Path) -> None:
    target = tmp_path / "pkg" / "mod.py"
    target.parent.mkdir()
    target.write_text("a = 1\nload()\n", encoding="utf-8")
    patch = Patch("pkg/mod.py", "load()\n", "try:\n    load()\nexcept OSError:\n    pass\n", "testing")
    assert apply_patch(tmp_path, patch) is True
    assert target.read_text(encoding="utf-8") == "a = 1\ntry:\n    load()\nexcept OSError:\n    pass\n"
    assert apply_patch(tmp_path, patch) is False
    target.write_text("a = 2\n", encoding="utf-8")
    with pytest.raises(PeerError, match=r"cannot patch .*pkg/mod.py: expected the text 'load\(\)\\n' once"):
        apply_patch(tmp_path, patch)
    with pytest.raises(PeerError, match=r"cannot patch .*pkg/other.py"):
        apply_patch(tmp_path, Patch("pkg/other.py", "x", "y", "testing"))


def test_graphbolt_patch_tolerates_the_missing_library(tmp_path: Path) -> None:
    graphbolt = next(patch for patch in PEER_PATCHES if patch.path == "dgl/graphbolt/__init__.py")
    module = tmp_path / graphbolt.path
    module.parent.mkdir(parents=True)
    # The end of DGL 2.1.0's dgl/graphbolt/__init__.py, its library missing.
    module.write_text('def load_graphbolt():\n    raise FileNotFoundError("Cannot find DGL C++ graphbolt library")'
                      "\n\n\nload_graphbolt()\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError):
        exec(compile(module.read_text(encoding="utf-8"), str(module), "exec"), {})
    apply_patch(tmp_path, graphbolt)
    exec(compile(module.read_text(encoding="utf-8"), str(module), "exec"), {})


def _fake_venv(root: Path) -> Path:
    """A venv stand-in: a python that logs its arguments, and site-packages files holding every patch's old text."""
    log_file = root / "pip.log"
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$@" >> "{log_file}"\n', encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    site_packages = root / "lib" / "python3.11" / "site-packages"
    for patch in PEER_PATCHES:
        path = site_packages / patch.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(f"# before\n{patch.old}\n# after\n")
    return log_file


def test_ensure_venv_installs_patches_stamps_and_upgrades_an_old_stamp(tmp_path: Path) -> None:
    root = tmp_path / "peer"
    pip_log = _fake_venv(root)
    (root / STAMP).write_text("torch==2.13.0\nrecbole==1.2.1\nnumpy<2\npandas<3\n", encoding="utf-8")  # before dgl
    assert ensure_venv(root) == root / "bin" / "python"
    calls = pip_log.read_text(encoding="utf-8").splitlines()
    assert len(calls) == 2 and calls[0].endswith("install --disable-pip-version-check -q torch==2.13.0")
    assert calls[1].endswith(" ".join(PEER_SPECS)) and "dgl==2.1.0" in calls[1] and "torch==2.13.0" in calls[1]
    for patch in PEER_PATCHES:
        text = (root / "lib" / "python3.11" / "site-packages" / patch.path).read_text(encoding="utf-8")
        assert patch.new in text and patch.old not in text
    assert ensure_venv(root) == root / "bin" / "python"  # stamped: nothing runs again
    assert len(pip_log.read_text(encoding="utf-8").splitlines()) == 2


def test_ensure_venv_fails_naming_the_file_when_a_patch_does_not_fit(tmp_path: Path) -> None:
    root = tmp_path / "peer"
    _fake_venv(root)
    kgat = root / "lib" / "python3.11" / "site-packages" / "recbole/model/knowledge_aware_recommender/kgat.py"
    kgat.write_text("# another RecBole\n", encoding="utf-8")
    with pytest.raises(PeerError, match="cannot patch .*kgat.py"):
        ensure_venv(root)
    assert not (root / STAMP).exists()


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


def _atomic(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_job_data_names_the_warm_catalogue_and_keeps_the_link_rows_recbole_can_merge(tmp_path: Path) -> None:
    source = tmp_path / "src" / "toy"
    source.mkdir(parents=True)
    (source / "toy.yaml").write_text("ITEM_ID_FIELD: item_id\nENTITY_ID_FIELD: entity_id\n"
                                     "load_col:\n  inter: [user_id, item_id]\n  link: [item_id, entity_id]\n",
                                     encoding="utf-8")
    inter = "user_id:token\titem_id:token\trating:float"
    _atomic(source / "toy.train.inter", inter, ["1\t10\t1.0", "2\t11\t1.0"])
    _atomic(source / "toy.valid.inter", inter, ["1\t12\t1.0"])
    _atomic(source / "toy.test.inter", inter, ["2\t13\t1.0"])
    _atomic(source / "toy.cold_test.inter", inter, ["2\t14\t1.0", "1\t12\t1.0"])  # 14 is cold, 12 is not
    _atomic(source / "toy.kg", "head_id:token\trelation_id:token\ttail_id:token", ["0\t5\t100", "1\t5\t100"])
    # 15 has no interaction at all: a warm item all the same (a negative, a ranking candidate), as in kgrec.
    # Link rows kept: 10, 12 and 15; 11's entity is in no triple, 14 is cold, 13 is not linked.
    _atomic(source / "toy.link", "item_id:token\tentity_id:token", ["10\t0", "11\t7", "12\t100", "14\t1", "15\t1"])
    folder = recbole_job.job_data(tmp_path / "src", "toy", tmp_path / "work" / "data")
    target = folder / "toy"
    assert (target / "toy.item").read_text(encoding="utf-8") == "item_id:token\n10\n11\n12\n15\n"
    link = "item_id:token\tentity_id:token\n10\t0\n12\t100\n15\t1\n"
    assert (target / "toy.link").read_text(encoding="utf-8") == link
    assert (target / "toy.kg").is_symlink() and (target / "toy.kg").resolve() == (source / "toy.kg").resolve()
    assert sorted(p.name for p in target.iterdir()) == sorted([p.name for p in source.iterdir()] + ["toy.item"])
    assert (source / "toy.link").read_text(encoding="utf-8").count("\n") == 6  # the source is left alone
    assert recbole_job.load_columns(target / "toy.yaml")["item"] == ["item_id"]


def test_job_data_keeps_a_sources_own_item_file(tmp_path: Path) -> None:
    source = tmp_path / "src" / "toy"
    source.mkdir(parents=True)
    (source / "toy.yaml").write_text("load_col:\n  inter: [user_id, item_id]\n  item: [item_id, genre]\n",
                                     encoding="utf-8")
    inter = "user_id:token\titem_id:token"
    for part in ("train", "valid", "test"):
        _atomic(source / f"toy.{part}.inter", inter, ["1\t10"])
    _atomic(source / "toy.item", "item_id:token\tgenre:token", ["10\tjazz", "16\tfolk"])
    _atomic(source / "toy.kg", "head_id:token\trelation_id:token\ttail_id:token", ["0\t5\t100"])
    _atomic(source / "toy.link", "item_id:token\tentity_id:token", ["10\t0", "16\t100", "17\t0"])
    target = recbole_job.job_data(tmp_path / "src", "toy", tmp_path / "work" / "data") / "toy"
    assert (target / "toy.item").is_symlink()
    assert (target / "toy.link").read_text(encoding="utf-8") == "item_id:token\tentity_id:token\n10\t0\n16\t100\n"
    assert recbole_job.load_columns(target / "toy.yaml")["item"] == ["item_id", "genre"]


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
