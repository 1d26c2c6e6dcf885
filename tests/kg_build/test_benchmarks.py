"""The published benchmark sets in ../shared/data: KGCN music loads with its paper counts and exports
cleanly; the two incomplete KGAT copies refuse to load, quoting their MISSING.txt."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from kg_build.benchmarks import BENCHMARKS, BenchmarkIncomplete, FileFormatError, load_kgat, load_kgcn_music
from kg_build.export import read_kgat, write_kgat, write_recbole
from kg_build.splits import SplitConfig
from kg_build.tables import KG

pytestmark = pytest.mark.shared

HEADER_FIELD = re.compile(r"^[a-z_]+:(token|token_seq|float|float_seq)$")


@pytest.fixture(scope="module")
def music(shared_data: Path) -> KG:
    return load_kgcn_music(shared_data / "kgcn-music", SplitConfig())


@pytest.fixture(scope="module")
def music_cold(shared_data: Path) -> KG:
    return load_kgcn_music(shared_data / "kgcn-music", SplitConfig(cold_items=0.1))


def data_lines(path: Path) -> list[list[str]]:
    """The rows of a RecBole atomic file, after checking its ``field:type`` header."""
    header, *rows = path.read_text(encoding="utf-8").split("\n")[:-1]
    assert all(HEADER_FIELD.match(field) for field in header.split("\t")), (path, header)
    return [row.split("\t") for row in rows]


def test_kgcn_music_has_the_paper_counts(music: KG):
    counts = music.counts()
    assert {k: counts[k] for k in ("items", "entities", "relations", "triples")} == {
        "items": 3_846, "entities": 9_366, "relations": 60, "triples": 15_518}
    # the paper's 1,872 users; its 42,346 interactions are these 21,173 positives + as many sampled negatives
    assert (counts["users"], counts["interactions"]) == (1_872, 21_173)
    assert (counts["split_train"], counts["split_valid"], counts["split_test"]) == (16_400, 1_300, 3_473)
    assert music.relations["label"].to_list() == sorted(music.relations["label"])
    assert music.relations["relation_id"].to_list() == list(range(60))
    assert music.entities.filter(pl.col("kind") == "item").height == 3_846
    assert music.item_entity.head(2).rows() == [(0, "2", 0), (1, "3", 1)]  # KGCN's item order
    assert music.interactions["weight"].min() >= 1 and music.interactions["ts"].null_count() == 21_173


def test_kgcn_music_recbole_export(music_cold: KG, tmp_path: Path):
    paths = write_recbole(music_cold, tmp_path, "kgcn-music")
    kg_rows, link = data_lines(paths["kg"]), data_lines(paths["link"])
    assert len(kg_rows) == 15_518 and len(link) == 3_846
    inter = data_lines(paths["inter"])
    assert len(inter) == music_cold.interactions.height
    by_split = {s: len(data_lines(paths[s])) for s in ("train", "valid", "test", "cold_test")}
    cold = music_cold.splits.filter(pl.col("split") == "cold_test").height
    assert cold > 0 and by_split["cold_test"] == cold
    assert by_split["train"] + by_split["valid"] + by_split["test"] == len(inter) - cold
    # entity tokens: .link's are exactly the heads of .kg (every item has facts), written the same way
    link_entities = {entity for _, entity in link}
    assert link_entities == {h for h, _, _ in kg_rows}
    assert {item for item, _ in link} == {row[1] for row in inter}
    assert all(token.isdigit() for row in kg_rows for token in row)


def test_kgcn_music_kgat_round_trip(music: KG, tmp_path: Path):
    write_kgat(music, tmp_path / "music")
    back = read_kgat(tmp_path / "music")
    assert back.counts() == music.counts()
    assert back.splits.join(back.users, on="user_index").select("user_id", "split").sort("user_id", "split").equals(
        music.splits.join(music.users, on="user_index").select("user_id", "split").sort("user_id", "split"))


@pytest.mark.parametrize(("name", "missing"), [("kgat-last-fm", "train.txt"), ("kgat-amazon-book", "kg_final.txt")])
def test_incomplete_kgat_copies_raise_quoting_missing_txt(shared_data: Path, name: str, missing: str):
    folder = shared_data / name
    with pytest.raises(BenchmarkIncomplete) as raised:
        BENCHMARKS[name](folder, SplitConfig())
    message = str(raised.value)
    assert str(folder) in message and f"missing {missing}" in message
    for line in (folder / "MISSING.txt").read_text(encoding="utf-8").strip().splitlines():
        assert line.strip() in message


def test_amazon_book_lists_and_interactions_parse(shared_data: Path, tmp_path: Path):
    """With its missing kg_final.txt stood in by an empty file, the rest of the copy reads with the
    counts of KGAT's loader (n_users, n_items, n_train, n_test, n_entities, n_relations)."""
    folder = shutil.copytree(shared_data / "kgat-amazon-book", tmp_path / "book",
                             ignore=shutil.ignore_patterns("MISSING.txt"))
    (folder / "kg_final.txt").touch()
    counts = load_kgat(folder).counts()
    assert {k: counts[k] for k in ("users", "items", "split_train", "split_test", "entities", "relations")} == {
        "users": 70_679, "items": 24_915, "split_train": 652_514, "split_test": 193_920, "entities": 113_487,
        "relations": 39}


def test_kgcn_music_file_errors_name_the_file_and_line(shared_data: Path, tmp_path: Path):
    folder = shutil.copytree(shared_data / "kgcn-music", tmp_path / "music", copy_function=shutil.copy)
    for path in folder.iterdir():
        path.chmod(0o644)
    lines = (folder / "kg.txt").read_bytes().split(b"\n")
    lines[4] = b"2086\tmusic.artist.origin"
    (folder / "kg.txt").write_bytes(b"\n".join(lines))
    with pytest.raises(FileFormatError, match=r"kg\.txt:5: expected 3 fields"):
        load_kgcn_music(folder, SplitConfig())
    (folder / "user_artists.dat").unlink()
    with pytest.raises(BenchmarkIncomplete, match=r"music: incomplete benchmark copy; missing user_artists\.dat"):
        load_kgcn_music(folder, SplitConfig())


def test_registry_names_every_shared_benchmark(shared_data: Path):
    assert set(BENCHMARKS) == {"kgcn-music", "kgat-last-fm", "kgat-amazon-book"}
    assert all((shared_data / name).is_dir() for name in BENCHMARKS)
