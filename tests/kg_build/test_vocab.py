"""Append-only vocabularies: stable ids across runs, retirement, and writers that cannot renumber."""

from __future__ import annotations

import hashlib
import multiprocessing
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kg_build.vocab import VocabularyError, VocabularyStore, check_append_only, empty, update

D1, D2, D3 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)


def ids(vocab: pl.DataFrame) -> dict[str, tuple[int, bool]]:
    return {k: (i, r) for i, k, r in vocab.select("id", "key", "retired").rows()}


def test_ids_are_assigned_once_in_key_order_and_kept():
    first = update(empty(), pl.Series(["wd:Q2", "wd:Q1", "wd:Q2"]), D1)
    assert ids(first) == {"wd:Q1": (0, False), "wd:Q2": (1, False)}
    second = update(first, pl.Series(["wd:Q3", "wd:Q2", "wd:Q0"]), D2)
    # Q1 is gone today: retired, not renumbered; Q0 and Q3 are new: after the last id, in key order
    assert ids(second) == {"wd:Q1": (0, True), "wd:Q2": (1, False), "wd:Q0": (2, False), "wd:Q3": (3, False)}
    assert second.filter(pl.col("key") == "wd:Q0")["first_seen"].item() == D2
    third = update(second, pl.Series(["wd:Q1", "wd:Q2", "wd:Q0", "wd:Q3"]), D3)
    assert ids(third)["wd:Q1"] == (0, False)  # back under its old id
    assert third.schema == pl.Schema({"id": pl.Int32, "key": pl.String, "first_seen": pl.Date,
                                      "retired": pl.Boolean})


def test_null_keys_and_renumbering_are_refused():
    with pytest.raises(VocabularyError, match="items: 1 null keys"):
        update(empty(), pl.Series(["a", None]), D1, name="items")
    before = update(empty(), pl.Series(["a", "b"]), D1)
    swapped = before.with_columns(pl.col("id").reverse())
    with pytest.raises(VocabularyError, match="entities: key 'a' would lose its id 0"):
        check_append_only(before, swapped, "entities")


def test_store_rewrites_nothing_when_nothing_changed(tmp_path: Path):
    store = VocabularyStore(tmp_path / "lake")
    store.update("entities", pl.Series(["x", "y"]), D1)
    path = store.path("entities")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mtime = path.stat().st_mtime_ns
    assert ids(store.update("entities", pl.Series(["y", "x"]), D2)) == {"x": (0, False), "y": (1, False)}
    assert path.stat().st_mtime_ns == mtime and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    store.update("entities", pl.Series(["x", "z"]), D2)
    assert ids(store.read("entities")) == {"x": (0, False), "y": (1, True), "z": (2, False)}


def _add(root: str, keys: list[str]) -> None:
    VocabularyStore(Path(root)).update("users", pl.Series(keys), D1)


def test_concurrent_writers_do_not_lose_or_share_ids(tmp_path: Path):
    batches = [[f"u{i}-{j}" for j in range(200)] + ["shared"] for i in range(4)]
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add, args=(str(tmp_path), keys)) for keys in batches]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    vocab = VocabularyStore(tmp_path).read("users")
    assert vocab.height == 4 * 200 + 1 and vocab["id"].is_unique().all()
    assert sorted(vocab["id"].to_list()) == list(range(vocab.height))
