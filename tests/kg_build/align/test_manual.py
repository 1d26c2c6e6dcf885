"""The overrides file (read, checked) and the review file that feeds it; and grading against gold."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from kg_build.align.aligner import AlignConfig, align
from kg_build.align.evaluate import GoldError, evaluate, read_gold
from kg_build.align.manual import OverridesError, read_overrides, review_table
from tests.kg_build.align.helpers import WD, WIKIDATA, film, items, triples


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_overrides_with_none_notes_and_sources(tmp_path: Path):
    path = write(tmp_path / "o.csv", "item_id,entity_iri,note,source\n"
                 f"1,{WD}Q1,\"the 1960 film, not the remake\",wikidata\n"
                 "2,NONE,,\n")
    rows = read_overrides(path)
    assert rows.select("item_id", "entity_iri", "note", "source").rows() == [
        ("1", WD + "Q1", "the 1960 film, not the remake", "wikidata"), ("2", None, "", None)]
    assert read_overrides(tmp_path / "absent.csv").is_empty()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,entity_iri,note\n1,NONE,x\n", "o.csv:1: header lacks the column\\(s\\) item_id"),
        ("item_id,entity_iri,note\n1,Q42,x\n", "o.csv:2: entity_iri must be an http\\(s\\) IRI or NONE"),
        ("item_id,entity_iri,note\n1,NONE,x\n,NONE,y\n", "o.csv:3: empty item_id"),
        ("item_id,entity_iri,note\n1,NONE,x\n1,http://x.org/a,y\n",
         "o.csv:2: more than one override for this item and source"),
        ("item_id,entity_iri,note\n1,http://x.org/a b,y\n", "o.csv:2: entity_iri must be"),
        ("item_id,entity_iri,note\n1,NONE,x\n2,NONE,\"open\n", "o.csv:3: malformed quoting"),
        ("item_id,entity_iri,note\n1,NONE\n", "o.csv:2: expected 3 fields, found 2"),
    ],
)
def test_bad_overrides_name_the_line(tmp_path: Path, text: str, message: str):
    with pytest.raises(OverridesError, match=message):
        read_overrides(write(tmp_path / "o.csv", text))


def test_a_reviewed_row_pasted_into_the_overrides_decides_the_next_run(tmp_path: Path):
    catalog = items(("1", "Psycho", None), ("2", "Heat", 1995))
    candidates = triples(film("Q1", "Psycho", 1960), film("Q2", "Psycho", 1998), film("Q3", "Heat", 1995))
    config = AlignConfig(matchers=("exact_label",))
    links = align(catalog, candidates, definition=WIKIDATA, domain="films", config=config).links
    review = review_table(links)
    assert review["item_id"].to_list() == ["1"] and review.columns[:4] == ["item_id", "entity_iri", "note", "source"]
    # the person picks the runner-up if the proposal is the remake, and says why
    row = review.row(0, named=True)
    pick = row["entity_iri"] if row["entity_iri"] == WD + "Q1" else row["runner_up_iri"]
    review = review.with_columns(pl.lit(pick).alias("entity_iri"), pl.lit("Hitchcock's").alias("note"))
    review.write_csv(tmp_path / "overrides.csv")
    again = align(catalog, candidates, definition=WIKIDATA, domain="films", config=config,
                  overrides=read_overrides(tmp_path / "overrides.csv")).links
    fixed = again.filter(pl.col("item_id") == "1").row(0, named=True)
    assert (fixed["entity_iri"], fixed["method"], fixed["status"]) == (WD + "Q1", "manual", "accepted")
    assert review_table(again).is_empty()


def links_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["item_id", "entity_iri", "source", "method", "score", "margin", "status"],
                        orient="row")


def test_precision_recall_per_method_and_wrong_links(tmp_path: Path):
    links = links_frame([
        ("1", "e1", "wd", "exact_label", 1.0, 1.0, "accepted"),
        ("2", "e9", "wd", "fuzzy", 0.9, 0.2, "accepted"),  # wrong
        ("3", "e3", "wd", "fuzzy", 0.95, 0.2, "accepted"),
        ("4", "e4", "wd", "fuzzy", 0.7, 0.1, "ambiguous"),  # missed
        ("5", "e5", "wd", "exact_label", 1.0, 1.0, "accepted"),  # no gold: ungraded
    ])
    write(tmp_path / "gold.csv", "item_id,entity_iri\n1,e1\n2,e2\n3,e3\n4,e4\n")
    result = evaluate(links, read_gold(tmp_path / "gold.csv"))
    assert (result.overall.graded, result.overall.correct, result.overall.gold) == (3, 2, 4)
    assert result.overall.precision == pytest.approx(2 / 3) and result.overall.recall == pytest.approx(0.5)
    assert result.overall.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert result.per_method["fuzzy"].precision == 0.5 and result.per_method["exact_label"].precision == 1.0
    assert result.wrong.select("item_id", "entity_iri", "gold_iri").rows() == [("2", "e9", "e2")]
    assert result.missed["item_id"].to_list() == ["4"] and result.ungraded == 1
    assert "fuzzy" in result.table()


def test_gold_from_the_exact_id_links_of_a_normal_run(tmp_path: Path):
    normal = links_frame([("1", "e1", "wd", "exact_id", 1.0, 1.0, "accepted"),
                          ("2", "e2", "wd", "exact_label", 1.0, 1.0, "accepted")])
    normal.write_parquet(tmp_path / "normal.parquet")
    gold = read_gold(tmp_path / "normal.parquet")
    assert gold.rows() == [("1", "wd", "e1")]
    with pytest.raises(GoldError, match="no accepted 'fuzzy' links"):
        read_gold(tmp_path / "normal.parquet", method="fuzzy")
    with pytest.raises(GoldError, match="does not exist"):
        read_gold(tmp_path / "nope.csv")
