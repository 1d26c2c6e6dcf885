"""`kgrec train` / `kgrec evaluate` on the sample's published KG: a real, seeded training run that must
beat the popularity baseline, stored versions, and a run killed mid-training then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import torch

from pipeline import model_store
from pipeline.settings import load_settings
from pipeline.steps.train import TrainError, evaluate_model, train
from tests.conftest import free_port, kgrec, publish_sample

DAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, sample_mirrors) -> dict[str, str]:
    """The environment of a home whose lake has the sample KG published."""
    return publish_sample(tmp_path_factory.mktemp("train-home"), sample_mirrors, DAY)[0]


def _recall(folder: Path, split: str = "test") -> float:
    return model_store.read_json(folder / "eval.json")[split]["recall@20"]


def test_kgcn_beats_popularity_on_the_sample(published: dict[str, str]) -> None:
    settings = load_settings(environ=published)
    pop, kgcn = train(settings, DAY, models=["pop", "kgcn"], epochs=30)
    assert (pop.name, kgcn.name) == ("version=1", "version=1")
    # seeded: KGCN reached 0.61 and popularity 0.28 when this test was written
    assert _recall(kgcn) > 1.5 * _recall(pop) > 0.2
    config = model_store.read_json(kgcn / "config.json")
    assert config["kg_version"] == 1 and config["hyper"]["neighbors"] == 8 and config["train"]["seed"] == 42
    epochs = (kgcn / "metrics.jsonl").read_text().splitlines()
    assert len(epochs) == config["result"]["epochs"]
    again = evaluate_model(settings, "kgcn")
    assert again["test"]["recall@20"] == pytest.approx(_recall(kgcn))
    state = torch.load(kgcn / "model.pt", weights_only=True)
    assert state["user.weight"].shape[0] == config["data"]["users"]


def test_bad_model_or_hyperparameter_is_named(published: dict[str, str]) -> None:
    settings = load_settings(environ=published)
    with pytest.raises(TrainError, match="unknown model 'kgcnn'"):
        train(settings, DAY, models=["kgcnn"])
    with pytest.raises(TrainError, match=r"unknown hyperparameter\(s\) \['hopz'\]"):
        train(settings, DAY, models=["kgcn"], overrides={"hopz": 2})
    result = kgrec("train", "--model", "kgcn", "--set", "aggregator=max", env=published)
    assert result.returncode == 1 and "unknown aggregator 'max'" in result.stderr
    assert model_store.partial(Path(published["KGREC_HOME"]), "kgcn") is None


def test_a_killed_run_resumes_and_ends_like_an_uninterrupted_one(published: dict[str, str], tmp_path: Path) -> None:
    args = ["train", "--model", "ripplenet", "--epochs", "8", "--set", "train.patience=100"]
    straight_env = {**published, "KGREC_HOME": str(tmp_path / "straight")}
    _copy_lake(published["KGREC_HOME"], straight_env["KGREC_HOME"])
    assert kgrec(*args, env=straight_env).returncode == 0

    exe = Path(sys.executable).with_name("kgrec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGREC_")} | published
    proc = subprocess.Popen([str(exe), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    metrics = Path(published["KGREC_HOME"]) / "models" / "ripplenet" / "version=1.partial" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (metrics.parent.with_name("version=1")).exists()

    resumed = kgrec(*args, "--resume", env=published)
    assert resumed.returncode == 0, resumed.stderr
    final = Path(resumed.stdout.splitlines()[0].strip())  # then the promotion gate's line
    assert final.name == "version=1"
    straight = Path(straight_env["KGREC_HOME"]) / "models" / "ripplenet" / "version=1"
    assert [json.loads(x)["epoch"] for x in (final / "metrics.jsonl").read_text().splitlines()] == list(range(8))
    a, b = (torch.load(f / "model.pt", weights_only=True) for f in (straight, final))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _copy_lake(src: str, dst: str) -> None:
    import shutil

    shutil.copytree(Path(src) / "lake", Path(dst) / "lake")


def test_torchrun_trains_one_version_with_two_processes(published: dict[str, str]) -> None:
    """``torchrun --nproc-per-node 2 --no-python kgrec train``: two gloo ranks on the CPU, one complete version."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KGREC_")}, **published, "OMP_NUM_THREADS": "1"}
    root = load_settings(environ=published).home / "models" / "kgat"
    before = set(root.glob("version=*")) if root.exists() else set()
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--master-port", str(free_port()), "--no-python",
                             str(Path(sys.executable).with_name("kgrec")), "train", "--model", "kgat", "--epochs", "2"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    new = sorted(set(root.glob("version=*")) - before)
    assert len(new) == 1 and new[0].name.startswith("version=")  # rank 1 made no folder of its own
    assert len((new[0] / "metrics.jsonl").read_text().splitlines()) == 2  # one writer
    assert "test" in model_store.read_json(new[0] / "eval.json")
    assert result.stdout.count("promote: kgat") == 1 and (new[0] / "gate.json").is_file()  # rank 0 alone gates it


@pytest.mark.parametrize("name", ["kgat", "pathrec"])
def test_each_top10_recommendation_is_explained_by_real_triples(published: dict[str, str], name: str) -> None:
    """20 random users, scored as the scoring job does (everything the user had is their history and is not
    recommended again): every top-10 item of a trained model has a path from the user's history, and each hop of
    each path is a triple of the published KG (checked by stable ids against the lake's triples table) or, for
    KGAT, a training interaction of another user."""
    from models.explain import Explainer
    from models.fit import build_model
    from pipeline import kg_store
    from pipeline.lake import Lake
    from pipeline.steps.train import published_data

    settings = load_settings(environ=published)
    folder = train(settings, DAY, models=[name], epochs=30)[0]
    version, data = published_data(settings)
    published_triples = kg_store.read(Lake(settings.lake_root), version).tables()["triples"]
    known = set(published_triples.select("head_id", "relation_id", "tail_id").iter_rows())
    config = model_store.read_json(folder / "config.json")
    model = build_model(name, data, config["hyper"], seed=config["train"]["seed"])
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    model.eval()
    users = torch.randperm(data.num_users, generator=torch.Generator().manual_seed(7))[:20]
    with torch.no_grad():
        scores = model.score_all(users)
    seen = torch.zeros(data.num_users, data.num_items, dtype=torch.bool)
    for pairs in data.splits.values():
        seen[pairs.users, pairs.items] = True
    scores[seen[users]] = -torch.inf  # recommend only what the user has not had
    top = scores.topk(10, dim=1).indices
    explainer = Explainer(model, data, history=tuple(data.splits))
    entity_id, relation_id = data.entity_ids.tolist(), data.relation_ids.tolist()
    item_of = {e: i for i, e in enumerate(data.kg.item_entity.tolist())}
    had = set(zip(data.train.users.tolist(), data.train.items.tolist(), strict=True))
    for user, items in zip(users.tolist(), top.tolist(), strict=True):
        for item, paths in zip(items, explainer.explain_many(user, items, k=3), strict=True):
            assert paths, f"{name}: user {user}'s recommendation {item} has no path from the user's history"
            for path in paths:
                for kind, *fact in path.facts():
                    if kind == "triple":
                        h, r, t = fact
                        assert (entity_id[h], relation_id[r], entity_id[t]) in known, (name, user, item, path)
                    else:  # a collaborative hop (KGAT): a training interaction of the published KG's split
                        assert (fact[0], item_of[fact[1]]) in had and fact[0] != user, (name, user, item, path)


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_reuse_keeps_the_version_trained_for_the_date_and_another_date_trains_anew(published: dict[str, str]) -> None:
    settings = load_settings(environ=published)
    home, name = settings.home, "bprmf"
    first = train(settings, DAY, models=[name], epochs=2, reuse=True)[0]
    assert first.parent == home / "models" / name and first.is_dir()
    config = model_store.read_json(first / "config.json")
    assert config["run_date"] == "2026-11-21" and config["kg_version"] == 1 and config["result"]["epochs"] == 2
    assert (first / "model.pt").is_file() and (first / "eval.json").is_file()
    versions, files = model_store.versions(home, name), _snapshot(first)

    again = train(settings, DAY, models=[name], epochs=2, reuse=True)[0]  # a re-run of the same date
    assert again == first
    assert model_store.versions(home, name) == versions and model_store.partial(home, name) is None
    assert _snapshot(first) == files  # not retrained, not rewritten

    later = train(settings, date(2026, 11, 22), models=[name], epochs=2, reuse=True)[0]
    assert later != first and model_store.versions(home, name) == [*versions, versions[-1] + 1]
    assert later.name == f"version={versions[-1] + 1}"
    assert model_store.read_json(later / "config.json")["run_date"] == "2026-11-22"
    assert _snapshot(first) == files

    other_settings = train(settings, DAY, models=[name], epochs=3, reuse=True)[0]  # the same date, other settings
    assert other_settings not in (first, later) and len(model_store.versions(home, name)) == len(versions) + 2
    assert model_store.read_json(other_settings / "config.json")["run_date"] == "2026-11-21"
    assert train(settings, DAY, models=[name], epochs=3, reuse=True)[0] == other_settings
