"""Training in several processes: two ranks on the CPU (gloo) end with the same weights; only rank 0 writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.multiprocessing as mp

from models.distributed import Context, shard
from models.fit import fit
from models.trainer import TrainConfig
from tests.conftest import free_port
from tests.models.cases import tiny_data

CONFIG = TrainConfig(epochs=3, batch_size=2, lr=0.05, patience=100, seed=5, device="cpu")


def test_shards_are_disjoint_cover_everything_and_have_equal_length() -> None:
    items = list(range(7))
    parts = [shard(items, Context(rank=r, world=3, joined=True)) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert sorted({i for p in parts for i in p}) == items
    assert parts[0] == [0, 3, 6] and parts[1] == [1, 4, 0] and parts[2] == [2, 5, 1]  # wrapped around
    assert shard(items, Context()) == items


def _rank(rank: int, port: int, out: Path, model: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
                       "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    fitted = fit(model, tiny_data(), protocol="ranking", hyper={"embedding_dim": 4, "layers": [3]}
                 if model == "kgat" else {"embedding_dim": 4}, config=CONFIG, out_dir=out / "run", progress=False)
    torch.save({"state": fitted.model.state_dict(), "history": fitted.result.history}, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _spawn(tmp_path: Path, model: str) -> list[dict]:
    mp.spawn(_rank, args=(free_port(), tmp_path, model), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_two_gloo_ranks_train_kgat_to_the_same_weights_and_only_rank_0_writes(tmp_path: Path) -> None:
    ranks = _spawn(tmp_path, "kgat")
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name  # gradients averaged: one model
    same = [{k: h[k] for k in ("loss", "valid")} for h in ranks[0]["history"]]
    # the same averaged losses and rank 0's validation scores on both ranks
    assert same == [{k: h[k] for k in ("loss", "valid")} for h in ranks[1]["history"]]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2]  # one writer: no line twice
    assert set(lines[0]["loss"]) == {"cf", "kg"}
    best = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert all(torch.equal(best[k], v) for k, v in ranks[0]["state"].items())


def test_the_two_ranks_train_on_different_batches(tmp_path: Path) -> None:
    single = fit("bprmf", tiny_data(), protocol="ranking", hyper={"embedding_dim": 4}, config=CONFIG,
                 progress=False)
    ranks = _spawn(tmp_path, "bprmf")
    # each rank saw half the batches of an epoch: the averaged run is not the one-process run
    assert not torch.equal(ranks[0]["state"]["user.weight"], single.model.state_dict()["user.weight"])
    assert torch.equal(ranks[0]["state"]["user.weight"], ranks[1]["state"]["user.weight"])
