from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from kg_build.schema import INTERACTIONS
from pipeline import __version__
from pipeline import lake as lake_mod
from pipeline.lake import Lake, LakeError, PartitionNotFound, file_fingerprint, partition_name

KEY = {"run_date": "2026-11-21"}


def _items(n: int) -> pl.DataFrame:
    return pl.DataFrame({"item_id": [f"i{i}" for i in range(n)], "title": [f"t{i}" for i in range(n)]})


def test_write_read_and_manifest_contents(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")
    manifest = lake.write(
        "catalog", KEY, {"items": _items(3), "rejects": _items(0)},
        config_hash="abc123", inputs=[file_fingerprint(source)], extra={"catalog": "unit"},
    )
    part = tmp_path / "lake" / "catalog" / "run_date=2026-11-21"
    assert sorted(p.name for p in part.iterdir()) == ["_MANIFEST.json", "items.parquet", "rejects.parquet"]
    assert lake.read("catalog", KEY, "items").equals(_items(3))

    on_disk = json.loads((part / "_MANIFEST.json").read_text())
    assert on_disk["dataset"] == "catalog" and on_disk["partition"] == KEY
    assert on_disk["config_hash"] == "abc123"
    assert on_disk["code_version"].startswith(__version__)
    assert on_disk["files"]["items"]["rows"] == 3 and on_disk["files"]["rejects"]["rows"] == 0
    assert on_disk["files"]["items"]["columns"] == ["item_id", "title"]
    data = (part / "items.parquet").read_bytes()
    assert on_disk["files"]["items"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert on_disk["files"]["items"]["bytes"] == len(data)
    assert on_disk["inputs"] == [{"path": str(source), "bytes": 8, "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest()}]
    assert on_disk["extra"] == {"catalog": "unit"}
    assert manifest == lake.manifest("catalog", KEY)
    assert manifest.row_counts == {"items": 3, "rejects": 0}


def test_rewrite_replaces_the_partition_and_leaves_no_staging(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write("catalog", KEY, {"items": _items(5), "old": _items(1)}, config_hash="1")
    lake.write("catalog", KEY, {"items": _items(2)}, config_hash="2")
    assert lake.read("catalog", KEY, "items").height == 2
    assert not (tmp_path / "catalog" / "run_date=2026-11-21" / "old.parquet").exists()
    assert lake.manifest("catalog", KEY).config_hash == "2"
    assert list((tmp_path / "catalog" / ".staging").iterdir()) == []
    assert lake.partitions("catalog") == [KEY]


def test_carry_over_keeps_named_tables_of_the_current_partition(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write("raw_triples", KEY, {"candidates": _items(3), "facts": _items(1)}, config_hash="1")
    lake.write("raw_triples", KEY, {"facts": _items(5)}, config_hash="2", carry_over=["candidates"])
    assert lake.manifest("raw_triples", KEY).row_counts == {"candidates": 3, "facts": 5}
    assert lake.read("raw_triples", KEY, "candidates").equals(_items(3))
    lake.verify("raw_triples", KEY)
    other = {"run_date": "2026-11-22"}  # nothing to carry over on a new date
    lake.write("raw_triples", other, {"facts": _items(2)}, config_hash="3", carry_over=["candidates"])
    assert lake.manifest("raw_triples", other).row_counts == {"facts": 2}


def test_two_rename_fallback_when_the_filesystem_cannot_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # As on a filesystem without renameat2(RENAME_EXCHANGE): the fallback path must give the same result.
    monkeypatch.setattr(lake_mod, "_rename_exchange", lambda a, b: False)
    lake = Lake(tmp_path)
    lake.write("catalog", KEY, {"items": _items(5)}, config_hash="1")
    lake.write("catalog", KEY, {"items": _items(2)}, config_hash="2")
    assert lake.read("catalog", KEY, "items").height == 2
    assert list((tmp_path / "catalog" / ".trash").iterdir()) == []


def test_a_crash_between_the_two_renames_is_undone_by_the_next_write(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write("catalog", KEY, {"items": _items(4)}, config_hash="1")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # The state a killed writer leaves: the old partition moved to .trash, the new one not yet in place.
    trash = tmp_path / "catalog" / ".trash"
    trash.mkdir()
    final = tmp_path / "catalog" / "run_date=2026-11-21"
    final.rename(trash / f"run_date=2026-11-21~{socket.gethostname()}~{dead.pid}~deadbeef")
    with pytest.raises(PartitionNotFound):
        lake.manifest("catalog", KEY)
    lake.write("catalog", {"run_date": "2026-11-22"}, {"items": _items(1)}, config_hash="2")
    assert lake.read("catalog", KEY, "items").height == 4
    assert lake.partitions("catalog") == [KEY, {"run_date": "2026-11-22"}]


_SLOW_WRITER = r"""
import sys, time, polars as pl, pyarrow as pa
from pathlib import Path
from pipeline.lake import Lake
root, marker = sys.argv[1], Path(sys.argv[2])
lake = Lake(root)
key = {"run_date": "2026-11-21"}
lake.write("interactions", key, {"interactions": pl.DataFrame({"n": [1, 2, 3]})}, config_hash="v1")
def batches():
    for i in range(1000):
        yield pa.record_batch({"n": list(range(i * 1000, (i + 1) * 1000))})
        if i == 0:
            marker.write_text("first batch written")
        time.sleep(0.05)
lake.write("interactions", key, {"interactions": batches()}, config_hash="v2")
"""


def test_a_process_killed_mid_write_leaves_the_previous_partition_and_nothing_partial(tmp_path: Path):
    marker = tmp_path / "marker"
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(tmp_path / "lake"), str(marker)])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert writer.poll() is None, "the writer ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    lake = Lake(tmp_path / "lake")
    assert lake.partitions("interactions") == [KEY]
    assert lake.manifest("interactions", KEY).config_hash == "v1"
    assert lake.read("interactions", KEY, "interactions")["n"].to_list() == [1, 2, 3]
    lake.verify("interactions", KEY)
    staging = tmp_path / "lake" / "interactions" / ".staging"
    assert len(list(staging.iterdir())) == 1  # the dead writer's half-written files, invisible to readers

    lake.write("interactions", KEY, {"interactions": pl.DataFrame({"n": [9]})}, config_hash="v3")
    assert lake.read("interactions", KEY, "interactions")["n"].to_list() == [9]
    assert list(staging.iterdir()) == []  # the next write cleared the dead writer's leftovers


def test_a_failing_write_keeps_the_previous_partition(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write("interactions", KEY, {"interactions": pl.DataFrame({"n": [1]})}, config_hash="v1")

    def broken():
        yield pa.record_batch({"n": [1, 2]})
        raise RuntimeError("source went away")

    with pytest.raises(RuntimeError, match="source went away"):
        lake.write("interactions", KEY, {"interactions": broken()}, config_hash="v2")
    assert lake.manifest("interactions", KEY).config_hash == "v1"
    assert list((tmp_path / "interactions" / ".staging").iterdir()) == []


def test_contract_schema_is_enforced_with_a_clear_error(tmp_path: Path):
    lake = Lake(tmp_path)
    good = pl.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "weight": [1.0], "ts": [None]})
    lake.write("interactions", KEY, {"interactions": good}, config_hash="x", schemas={"interactions": INTERACTIONS})
    assert lake.read("interactions", KEY, "interactions").schema["weight"] == pl.Float32
    with pytest.raises(LakeError, match=r"interactions\.parquet: missing columns \['weight'\]"):
        lake.write("interactions", KEY, {"interactions": good.drop("weight")}, config_hash="x",
                   schemas={"interactions": INTERACTIONS})
    bad = good.with_columns(pl.lit("heavy").alias("weight"))
    with pytest.raises(LakeError, match="does not fit the contract schema"):
        lake.write("interactions", KEY, {"interactions": bad}, config_hash="x", schemas={"interactions": INTERACTIONS})
    assert lake.read("interactions", KEY, "interactions").height == 1


@pytest.mark.parametrize(
    ("dataset", "key"),
    [("../etc", KEY), ("Catalog", KEY), ("catalog", {"run_date": "../../x"}), ("catalog", {"Run": "1"}), ("catalog", {})],
)
def test_bad_names_are_refused(tmp_path: Path, dataset: str, key: dict[str, str]):
    with pytest.raises(LakeError):
        Lake(tmp_path).write(dataset, key, {"items": _items(1)}, config_hash="x")


def test_publish_moves_current_only_when_asked_and_checks_the_files(tmp_path: Path):
    lake = Lake(tmp_path)
    older, newer = {"version": "1"}, {"version": "2"}
    lake.write("kg", older, {"triples": _items(3)}, config_hash="x")
    assert lake.current("kg") is None
    lake.publish("kg", older)
    lake.write("kg", newer, {"triples": _items(4)}, config_hash="x")
    assert lake.current("kg") == older  # a new partition does not move _CURRENT
    assert (tmp_path / "kg" / "_CURRENT").read_text() == "version=1\n"

    with pytest.raises(PartitionNotFound, match="kg/version=3 does not exist"):
        lake.publish("kg", {"version": "3"})
    (tmp_path / "kg" / "version=2" / "triples.parquet").write_bytes(b"tampered")
    with pytest.raises(LakeError, match="triples.parquet does not match its manifest"):
        lake.publish("kg", newer)
    assert lake.current("kg") == older


def test_partitions_ignore_incomplete_directories(tmp_path: Path):
    lake = Lake(tmp_path)
    lake.write("raw_triples", {"source": "wikidata", "run_date": "2026-11-21"}, {"part-0": _items(1)}, config_hash="x")
    (tmp_path / "raw_triples" / "source=dbpedia" / "run_date=2026-11-21").mkdir(parents=True)  # no manifest
    assert lake.partitions("raw_triples") == [{"source": "wikidata", "run_date": "2026-11-21"}]
    assert partition_name({"source": "wikidata", "run_date": "2026-11-21"}) == "source=wikidata/run_date=2026-11-21"
    with pytest.raises(LakeError, match="has no table 'items'"):
        lake.read("raw_triples", {"source": "wikidata", "run_date": "2026-11-21"}, "items")


def test_attachments_are_swapped_in_with_the_tables_and_verified(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    lake.write("alignment", KEY, {"links": _items(3)}, config_hash="h",
               attachments={"review.csv": b"item_id\n1\n", "report.html": b"<html></html>"})
    manifest = lake.manifest("alignment", KEY)
    assert manifest.attachments["review.csv"] == {"bytes": 10, "sha256": hashlib.sha256(b"item_id\n1\n").hexdigest()}
    assert lake.attachment("alignment", KEY, "report.html") == b"<html></html>"
    lake.verify("alignment", KEY)
    Path(lake.partition_path("alignment", KEY), "review.csv").write_bytes(b"tampered")
    with pytest.raises(LakeError, match="review.csv does not match its manifest"):
        lake.verify("alignment", KEY)
    with pytest.raises(LakeError, match="no attachment 'scores.png'"):
        lake.attachment("alignment", KEY, "scores.png")
    for bad in ({"../x.csv": b""}, {"links.parquet": b""}, {"a/b/c.txt": b""}):
        with pytest.raises(LakeError, match="bad attachment name|would overwrite a table"):
            lake.write("alignment", KEY, {"links": _items(1)}, config_hash="h", attachments=bad)
    assert lake.read("alignment", KEY, "links").height == 3  # refused writes changed nothing


def test_attach_adds_files_in_a_folder_and_keeps_tables_and_earlier_attachments(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    key = {"version": "3"}
    lake.write("kg", key, {"triples": _items(4)}, config_hash="h", inputs=[{"dataset": "x"}], extra={"run": 1},
               attachments={"notes.txt": b"first"})
    before = lake.manifest("kg", key)
    lake.attach("kg", key, {"validation/report.md": b"# PASS"}, extra={"validation": {"success": True}})
    after = lake.manifest("kg", key)
    assert after.files == before.files and after.inputs == before.inputs
    assert after.extra == {"run": 1, "validation": {"success": True}}
    assert set(after.attachments) == {"notes.txt", "validation/report.md"}
    assert lake.attachment("kg", key, "validation/report.md") == b"# PASS"
    lake.verify("kg", key)
    with pytest.raises(PartitionNotFound):
        lake.attach("kg", {"version": "4"}, {"x.txt": b""})


def test_numeric_partition_values_sort_as_numbers(tmp_path: Path):
    lake = Lake(tmp_path / "lake")
    for version in (10, 9, 2):
        lake.write("kg", {"version": str(version)}, {"t": _items(1)}, config_hash="h")
    assert [p["version"] for p in lake.partitions("kg")] == ["2", "9", "10"]
