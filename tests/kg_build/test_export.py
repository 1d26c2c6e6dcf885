"""RecBole and KGAT exports of a hand-built KG, the KGAT reader, and the atomic folder write."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from kg_build.export import (
    BenchmarkIncomplete,
    ExportError,
    FileFormatError,
    read_kgat,
    write_kgat,
    write_recbole,
)
from kg_build.splits import SplitConfig
from kg_build.tables import KG

HEADER_FIELD = re.compile(r"^[a-z_]+:(token|token_seq|float|float_seq)$")
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def tiny_kg(*, item_ids: tuple[str, ...] = ("a", "b", "c", "d"), extra_triples: list[tuple] = ()) -> KG:
    """4 items (entity ids not 0..n-1, item order unlike entity order), 3 attributes, 1 retired entity;
    a forward relation ``genre`` with its inverse, ``member``, a retired relation; 3 users; item d is cold."""
    entities = pl.DataFrame(
        [(12, "urn:ex:item:a", "A", "item", False), (10, "urn:ex:item:b", "B", "item", False),
         (11, "urn:ex:item:c", None, "item", False), (13, "urn:ex:item:d", "D", "item", False),
         (1, "http://ex.org/rock", "rock", "attribute", False), (2, "http://ex.org/jazz", "jazz", "attribute", False),
         (3, "http://ex.org/x", "x", "attribute", False), (5, "http://ex.org/old", "old", "attribute", True)],
        schema=["entity_id", "iri", "label", "kind", "retired"], orient="row",
    )
    relations = pl.DataFrame(
        [(0, "http://ex.org/genre", "genre", None, False), (1, "^http://ex.org/genre", "genre_inverse", 0, False),
         (2, "http://ex.org/member", "member", None, False), (3, "http://ex.org/gone", "gone", None, True)],
        schema=["relation_id", "iri", "label", "inverse_of", "retired"], orient="row",
    )
    triples = pl.DataFrame(
        [(12, 0, 1), (1, 1, 12), (10, 0, 2), (2, 1, 10), (11, 0, 1), (1, 1, 11), (3, 2, 10),
         (2, 1, 11),  # inverse only: KGAT gets the forward (11, genre, 2)
         *extra_triples],
        schema=["head_id", "relation_id", "tail_id"], orient="row",
    )
    item_entity = pl.DataFrame({"item_index": [0, 1, 2, 3], "item_id": list(item_ids), "entity_id": [12, 10, 11, 13]})
    users = pl.DataFrame({"user_index": [0, 1, 2], "user_id": ["u1", "u2", "u3"]})
    interactions = pl.DataFrame(
        [(0, 0, 5.0, T0), (0, 1, 4.0, None), (0, 2, 1.5, None), (1, 0, 2.0, T0), (1, 2, 3.0, None), (2, 3, 1.0, None)],
        schema={"user_index": pl.Int32, "item_index": pl.Int32, "weight": pl.Float32, "ts": pl.Datetime("us", "UTC")},
        orient="row",
    )
    splits = pl.DataFrame(
        [(0, 0, "train"), (0, 1, "valid"), (0, 2, "test"), (1, 0, "train"), (1, 2, "test"), (2, 3, "cold_test")],
        schema=["user_index", "item_index", "split"], orient="row",
    )
    return KG(entities, relations, triples, item_entity, users, interactions, splits)


def read_tsv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", infer_schema=False, quote_char=None)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- RecBole -------------------------------------------------------------------------------------


def test_recbole_files_headers_and_rows(tmp_path: Path):
    paths = write_recbole(tiny_kg(), tmp_path, "tiny")
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == sorted(p.name for p in paths.values())
    for kind, path in paths.items():
        if kind != "yaml":
            header = path.read_text(encoding="utf-8").split("\n")[0].split("\t")
            assert all(HEADER_FIELD.match(field) for field in header), (path, header)

    inter = read_tsv(paths["inter"])
    assert inter.columns == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
    assert inter.rows()[:2] == [("u1", "a", "5.0", str(T0.timestamp())), ("u1", "b", "4.0", None)]
    assert inter.height == 6
    sizes = {s: read_tsv(paths[s]).height for s in ("train", "valid", "test", "cold_test")}
    assert sizes == {"train": 2, "valid": 1, "test": 2, "cold_test": 1}
    assert read_tsv(paths["cold_test"]).rows() == [("u3", "d", "1.0", None)]

    kg_rows = read_tsv(paths["kg"])
    assert kg_rows.columns == ["head_id:token", "relation_id:token", "tail_id:token"]
    assert kg_rows.height == 8 and "5" not in set(kg_rows["head_id:token"]) | set(kg_rows["tail_id:token"])
    assert read_tsv(paths["link"]).rows() == [("a", "12"), ("b", "10"), ("c", "11"), ("d", "13")]

    config = yaml.safe_load(paths["yaml"].read_text(encoding="utf-8"))
    assert config["benchmark_filename"] == ["train", "valid", "test"]
    assert config["load_col"] == {"inter": ["user_id", "item_id", "rating", "timestamp"],
                                  "kg": ["head_id", "relation_id", "tail_id"], "link": ["item_id", "entity_id"]}
    assert {k: config[k] for k in ("USER_ID_FIELD", "ITEM_ID_FIELD", "ENTITY_ID_FIELD", "HEAD_ENTITY_ID_FIELD")} == {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "ENTITY_ID_FIELD": "entity_id",
        "HEAD_ENTITY_ID_FIELD": "head_id"}
    assert b"\r" not in paths["inter"].read_bytes()


def test_recbole_rejects_a_tab_in_an_item_id_by_name(tmp_path: Path):
    with pytest.raises(ExportError, match=r"item_entity\.item_id: value 'b\\tx' contains a tab or newline"):
        write_recbole(tiny_kg(item_ids=("a", "b\tx", "c", "d")), tmp_path, "tiny")
    assert list(tmp_path.iterdir()) == []  # no export, no temporary folder left


def test_a_failed_export_leaves_the_previous_one_intact(tmp_path: Path):
    write_recbole(tiny_kg(), tmp_path, "tiny")
    write_kgat(tiny_kg(), tmp_path / "kgat")
    before = snapshot(tmp_path / "tiny"), snapshot(tmp_path / "kgat")
    # the .inter files are written before the .kg check fails on a triple into a retired entity
    with pytest.raises(ExportError, match="retired or unknown"):
        write_recbole(tiny_kg(extra_triples=[(12, 2, 5)]), tmp_path, "tiny")
    # train/test/kg_final are written before item_list.txt rejects the space
    with pytest.raises(ExportError, match=r"item_entity\.item_id: value 'a b' contains whitespace"):
        write_kgat(tiny_kg(item_ids=("a b", "b", "c", "d")), tmp_path / "kgat")
    assert (snapshot(tmp_path / "tiny"), snapshot(tmp_path / "kgat")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kgat", "tiny"]


def test_a_complete_export_replaces_the_previous_one(tmp_path: Path):
    write_recbole(tiny_kg(), tmp_path, "tiny")
    write_recbole(tiny_kg(item_ids=("a", "b", "c", "z")), tmp_path, "tiny")
    assert read_tsv(tmp_path / "tiny" / "tiny.link")["item_id:token"].to_list() == ["a", "b", "c", "z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


# -- KGAT ----------------------------------------------------------------------------------------


def iri_triples(kg: KG) -> set[tuple[str, str, str]]:
    iri = kg.entities.select("entity_id", "iri")
    return set(
        kg.triples.join(iri.rename({"entity_id": "head_id", "iri": "h"}), on="head_id")
        .join(kg.relations.select("relation_id", pl.col("iri").alias("r")), on="relation_id")
        .join(iri.rename({"entity_id": "tail_id", "iri": "t"}), on="tail_id")
        .select("h", "r", "t").rows()
    )


def named_splits(kg: KG) -> set[tuple[str, str, str]]:
    return set(kg.splits.join(kg.users, on="user_index").join(kg.item_entity, on="item_index")
               .select("user_id", "item_id", "split").rows())


def test_kgat_files_put_items_first_and_drop_inverse_relations(tmp_path: Path):
    paths = write_kgat(tiny_kg(), tmp_path / "tiny")
    text = {stem: path.read_text(encoding="utf-8").splitlines() for stem, path in paths.items()}
    assert text["item_list"] == ["org_id remap_id freebase_id", "a 0 urn:ex:item:a", "b 1 urn:ex:item:b",
                                 "c 2 urn:ex:item:c", "d 3 urn:ex:item:d"]
    # items are entities 0..3 in item order, then the active attributes in entity_id order; 5 is retired
    assert text["entity_list"] == ["org_id remap_id", "urn:ex:item:a 0", "urn:ex:item:b 1", "urn:ex:item:c 2",
                                   "urn:ex:item:d 3", "http://ex.org/rock 4", "http://ex.org/jazz 5",
                                   "http://ex.org/x 6"]
    assert text["relation_list"] == ["org_id remap_id", "http://ex.org/genre 0", "http://ex.org/member 1"]
    assert text["kg_final"] == ["0 0 4", "1 0 5", "2 0 4", "2 0 5", "6 1 1"]
    assert text["user_list"] == ["org_id remap_id", "u1 0", "u2 1", "u3 2"]
    assert text["train"] == ["0 0", "1 0"] and text["test"] == ["0 2", "1 2"]
    assert text["valid"] == ["0 1"] and text["cold_test"] == ["2 3"]


def test_kgat_round_trip(tmp_path: Path):
    kg = tiny_kg()
    write_kgat(kg, tmp_path / "tiny")
    back = read_kgat(tmp_path / "tiny")
    forward = {("urn:ex:item:a", "http://ex.org/genre", "http://ex.org/rock"),
               ("urn:ex:item:b", "http://ex.org/genre", "http://ex.org/jazz"),
               ("urn:ex:item:c", "http://ex.org/genre", "http://ex.org/rock"),
               ("urn:ex:item:c", "http://ex.org/genre", "http://ex.org/jazz"),
               ("http://ex.org/x", "http://ex.org/member", "urn:ex:item:b")}
    assert iri_triples(back) == forward
    assert {r for _, r, _ in iri_triples(kg)} - {r for _, r, _ in forward} == {"^http://ex.org/genre"}
    assert back.relations.select("relation_id", "label", "inverse_of").rows() == [
        (0, "genre", None), (1, "member", None)]
    items = back.item_entity.join(back.entities, on="entity_id").sort("item_index")
    assert items.select("item_index", "item_id", "entity_id", "iri", "kind").rows() == [
        (0, "a", 0, "urn:ex:item:a", "item"), (1, "b", 1, "urn:ex:item:b", "item"),
        (2, "c", 2, "urn:ex:item:c", "item"), (3, "d", 3, "urn:ex:item:d", "item")]
    assert "http://ex.org/old" not in back.entities["iri"].to_list() and back.counts()["entities"] == 7
    assert named_splits(back) == named_splits(kg)
    assert back.users.rows() == kg.users.rows()
    assert back.interactions["weight"].to_list() == [1.0] * 6 and back.interactions["ts"].null_count() == 6


def test_read_kgat_takes_gzip_and_headerless_lists(tmp_path: Path):
    folder = tmp_path / "tiny"
    write_kgat(tiny_kg(), folder)
    plain = read_kgat(folder)
    for name in ("train.txt", "kg_final.txt", "entity_list.txt"):
        (folder / f"{name}.gz").write_bytes(gzip.compress((folder / name).read_bytes()))
        (folder / name).unlink()
    lines = (folder / "user_list.txt").read_text().splitlines()
    (folder / "user_list.txt").write_text("\r\n".join(lines[1:]) + "\r\n")  # no header, CRLF
    again = read_kgat(folder)
    assert all(again.tables()[name].equals(table) for name, table in plain.tables().items())


def test_read_kgat_names_file_and_line_of_a_bad_line(tmp_path: Path):
    folder = tmp_path / "tiny"
    write_kgat(tiny_kg(), folder)
    with (folder / "test.txt").open("a") as out:
        out.write("\n1 2 x\n")
    with pytest.raises(FileFormatError, match=r"test\.txt:4: expected `user item item \.\.\.`.*'1 2 x'"):
        read_kgat(folder)
    write_kgat(tiny_kg(), folder)
    with (folder / "kg_final.txt").open("a") as out:
        out.write("0 0 99\n")
    with pytest.raises(FileFormatError, match=r"kg_final\.txt:6: entity id not in entity_list"):
        read_kgat(folder)
    write_kgat(tiny_kg(), folder)
    (folder / "item_list.txt").write_text("org_id remap_id freebase_id\na 0 urn:ex:item:b\n")
    with pytest.raises(FileFormatError, match=r"item_list\.txt:2: the item's freebase_id is not the org_id"):
        read_kgat(folder)


def test_read_kgat_missing_files_and_missing_note(tmp_path: Path):
    folder = tmp_path / "tiny"
    write_kgat(tiny_kg(), folder)
    (folder / "kg_final.txt").unlink()
    (folder / "train.txt").unlink()
    with pytest.raises(BenchmarkIncomplete, match=r"tiny: incomplete benchmark copy; missing train\.txt, kg_final"):
        read_kgat(folder)
    write_kgat(tiny_kg(), folder)
    (folder / "MISSING.txt").write_text("INCOMPLETE: the authors' test split\nis withheld.\n")
    with pytest.raises(BenchmarkIncomplete) as raised:
        read_kgat(folder)
    assert "INCOMPLETE: the authors' test split" in str(raised.value) and "is withheld." in str(raised.value)


def test_read_kgat_can_resplit(tmp_path: Path):
    write_kgat(tiny_kg(), tmp_path / "tiny")
    config = SplitConfig(valid=0.0, test=0.5, seed=3)
    first, again = read_kgat(tmp_path / "tiny", config), read_kgat(tmp_path / "tiny", config)
    assert first.splits.equals(again.splits) and first.splits.height == 6
    assert set(first.splits["split"]) <= {"train", "test"}
    assert first.splits.filter(pl.col("split") == "train")["user_index"].n_unique() == 3
