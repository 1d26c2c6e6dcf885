"""The KG gate: a small valid KG passes every suite; each corruption fails its named check, with the offender
among the example rows. Real Great Expectations, no mocks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest

from kg_build.tables import KG, SCHEMAS
from kg_build.validate import DriftBand, ValidationResult, validate_kg

SUITES = ["entities", "relations", "triples", "item_entity", "users", "interactions", "integrity", "leakage"]
Tables = dict[str, pl.DataFrame]


def tables() -> Tables:
    """Three films (film 2 is a cold item), a director, a genre, a retired entity; directedBy and its
    inverse, genre, a retired relation; three users."""
    rows = {
        "entities": [(0, "ex:film0", "Film 0", "item", False), (1, "ex:film1", "Film 1", "item", False),
                     (2, "ex:film2", "Film 2", "item", False), (3, "ex:dir3", "Director", "attribute", False),
                     (4, "ex:genre4", "Drama", "attribute", False), (5, "ex:gone5", "Gone", "attribute", True)],
        "relations": [(0, "ex:directedBy", "directed by", 1, False), (1, "ex:directed", "directed", 0, False),
                      (2, "ex:genre", "genre", None, False), (3, "ex:old", "old", None, True)],
        "triples": [(0, 0, 3), (3, 1, 0), (1, 0, 3), (3, 1, 1), (0, 2, 4), (1, 2, 4), (2, 2, 4)],
        "item_entity": [(0, "m0", 0), (1, "m1", 1), (2, "m2", 2)],
        "users": [(0, "u0"), (1, "u1"), (2, "u2")],
        "splits": [(0, 0, "train"), (0, 1, "test"), (0, 2, "cold_test"), (1, 1, "train"), (1, 0, "valid"),
                   (1, 2, "cold_test"), (2, 0, "train"), (2, 1, "train")],
    }
    out = {name: frame(name, data) for name, data in rows.items()}
    ts = datetime(2024, 1, 1, tzinfo=UTC)
    out["interactions"] = frame("interactions", [(u, i, 1.0, ts) for u, i, _ in rows["splits"]])
    return out


def frame(name: str, rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMAS[name], orient="row")


def add(t: Tables, name: str, *rows: tuple, interactions: bool = True) -> Tables:
    """``t`` with ``rows`` appended to table ``name``; a pair added to splits is an interaction too."""
    if name == "splits" and interactions:
        t = add(t, "interactions", *((u, i, 1.0, None) for u, i, _ in rows))
    return {**t, name: pl.concat([t[name], frame(name, list(rows))])}


def validate(t: Tables, **kwargs) -> ValidationResult:
    return validate_kg(KG.from_tables(t), **kwargs)


@pytest.fixture(scope="module")
def valid() -> ValidationResult:
    return validate(tables())


def test_a_valid_kg_passes_every_suite_and_the_first_publish_has_no_drift_suite(valid: ValidationResult):
    assert valid.success, valid.report()
    assert valid.failed() == []
    assert [s.name for s in valid.suites] == SUITES
    assert any("first publish" in note for note in valid.notes)
    names = {o.name for o in valid.outcomes()}
    assert {"entity_id_unique", "triples_unique", "relation_in_vocabulary", "item_index_dense", "split_in_set",
            "no_dangling_tails", "inverse_of_exists", "no_leakage", "cold_items_unseen"} <= names
    assert len(names) == len(valid.outcomes())  # names are unique across suites
    assert all(o.examples == [] for o in valid.outcomes())
    assert valid.check("triples_unique").expectation == "expect_compound_columns_to_be_unique"


def test_validation_is_quiet(capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    validate(tables())
    assert capfd.readouterr() == ("", "")  # no GX progress bars
    assert not [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]


def test_unchanged_counts_pass_the_drift_suite():
    kg = KG.from_tables(tables())
    result = validate_kg(kg, previous=kg.counts())
    assert result.success, result.report()
    drift = result.suites[-1]
    assert drift.name == "drift"
    assert [o.name for o in drift.expectations] == [
        "drift_triples", "drift_entities", "drift_items", "drift_users", "drift_interactions"]
    assert result.check("drift_entities").observed == {"previous": 5, "now": 5, "change": "+0.0%"}


# (case, corrupt the tables, the checks that fail, a row among the failed check's examples)
CORRUPTIONS: list[tuple[str, Callable[[Tables], Tables], set[str], str, dict]] = [
    ("dangling tail", lambda t: add(t, "triples", (0, 2, 99)),
     {"no_dangling_tails", "tail_id_in_range"}, "no_dangling_tails",
     {"head_id": 0, "relation_id": 2, "tail_id": 99, "reason": "unknown"}),
    ("tail is a retired entity", lambda t: add(t, "triples", (0, 2, 5)),
     {"no_dangling_tails"}, "no_dangling_tails", {"tail_id": 5, "reason": "retired"}),
    ("duplicate triple", lambda t: add(t, "triples", (1, 2, 4)),
     {"triples_unique"}, "triples_unique", {"head_id": 1, "relation_id": 2, "tail_id": 4}),
    ("unknown relation", lambda t: add(t, "triples", (0, 7, 4)),
     {"relation_in_vocabulary"}, "relation_in_vocabulary", {"head_id": 0, "relation_id": 7}),
    ("retired relation", lambda t: add(t, "triples", (2, 3, 4)),
     {"relation_in_vocabulary"}, "relation_in_vocabulary", {"head_id": 2, "relation_id": 3}),
    ("test pair copied into train", lambda t: add(t, "splits", (0, 1, "train"), interactions=False),
     {"no_leakage", "split_pairs_unique"}, "no_leakage", {"user_index": 0, "item_index": 1, "split": "test"}),
    ("cold item in train", lambda t: add(t, "splits", (2, 2, "train")),
     {"cold_items_unseen"}, "cold_items_unseen", {"user_index": 2, "item_index": 2, "split": "train"}),
    ("item mapped to two entities", lambda t: add(t, "item_entity", (3, "m0", 1)),
     {"item_maps_to_one_entity"}, "item_maps_to_one_entity", {"item_index": 3, "item_id": "m0", "entity_id": 1}),
    ("item mapped to an attribute", lambda t: {**t, "item_entity": t["item_entity"].with_columns(
        pl.when(pl.col("item_index") == 1).then(3).otherwise(pl.col("entity_id")).alias("entity_id"))},
     {"item_entities_are_items"}, "item_entities_are_items", {"item_id": "m1", "entity_id": 3, "kind": "attribute"}),
    ("inverse of a missing relation", lambda t: {**t, "relations": t["relations"].with_columns(
        pl.when(pl.col("relation_id") == 2).then(9).otherwise(pl.col("inverse_of")).alias("inverse_of"))},
     {"inverse_of_exists"}, "inverse_of_exists", {"relation_id": 2, "inverse_of": 9, "reason": "unknown"}),
    ("null head", lambda t: add(t, "triples", (None, 2, 4)),
     {"head_id_not_null"}, "head_id_not_null", {"head_id": None, "relation_id": 2, "tail_id": 4}),
    ("null interaction key", lambda t: {**t, "interactions": pl.concat(
        [t["interactions"], frame("interactions", [(None, 1, 1.0, None)])])},
     {"interaction_keys_not_null"}, "interaction_keys_not_null",
     {"table": "interactions", "row": 8, "user_index": None, "item_index": 1}),
    ("interaction missing from splits", lambda t: {**t, "interactions": t["interactions"].slice(1)},
     {"split_pairs_match_interactions"}, "split_pairs_match_interactions",
     {"user_index": 0, "item_index": 0, "in": "splits only"}),
    ("split outside the set", lambda t: {**t, "splits": t["splits"].with_columns(
        pl.when(pl.col("split") == "valid").then(pl.lit("dev")).otherwise(pl.col("split")).alias("split"))},
     {"split_in_set"}, "split_in_set", {"user_index": 1, "item_index": 0, "split": "dev"}),
]


@pytest.mark.parametrize(("corrupt", "failing", "check", "offender"),
                         [case[1:] for case in CORRUPTIONS], ids=[case[0] for case in CORRUPTIONS])
def test_a_corruption_fails_its_check_and_names_the_offender(corrupt, failing, check, offender):
    result = validate(corrupt(tables()))
    assert not result.success
    assert {o.name for o in result.failed()} == failing, result.report()
    outcome = result.check(check)
    assert any(offender.items() <= row.items() for row in outcome.examples), outcome.examples
    assert outcome.unexpected_count >= 1


def test_a_halved_triple_count_fails_drift():
    kg = KG.from_tables(tables())
    previous = kg.counts() | {"triples": 2 * kg.triples.height}
    result = validate_kg(kg, previous=previous)
    assert [o.name for o in result.failed()] == ["drift_triples"]
    drift = result.check("drift_triples")
    assert drift.observed == {"previous": 14, "now": 7, "change": "-50.0%"}
    assert drift.kwargs == {"min_value": 12, "max_value": 28}
    assert drift.examples[0]["count"] == "triples"
    assert "-50.0%" in result.report()


def test_growth_beyond_the_band_fails_unless_growth_is_unbounded():
    kg = KG.from_tables(tables())
    previous = kg.counts() | {"users": 1}  # 1 -> 3 users: +200%
    assert [o.name for o in validate_kg(kg, previous=previous).failed()] == ["drift_users"]
    assert validate_kg(kg, previous=previous, band=DriftBand(max_growth=None)).success
    with pytest.raises(ValueError, match="max_shrink"):
        DriftBand(max_shrink=1.5)


@pytest.fixture(scope="module")
def broken() -> ValidationResult:
    t = add(add(tables(), "triples", (0, 2, 99)), "splits", (2, 2, "train"))
    return validate(t, previous=KG.from_tables(tables()).counts() | {"triples": 100}, examples=1)


def test_the_report_names_every_failed_check_with_its_example_rows(broken: ValidationResult):
    report = broken.report()
    assert report.startswith("# KG validation: FAIL")
    failed = broken.failed()
    assert {o.name for o in failed} == {"no_dangling_tails", "tail_id_in_range", "cold_items_unseen",
                                        "drift_triples"}
    for outcome in failed:
        assert f"### {outcome.name} ({outcome.suite})" in report
        assert len(outcome.examples) == 1
    assert "| head_id | relation_id | tail_id | reason |" in report
    assert "| 0 | 2 | 99 | unknown |" in report
    assert "| integrity | 6 | 1 | FAIL |" in report
    assert "| entities | 8 | 0 | pass |" in report


def test_to_json_round_trips_with_the_raw_gx_results(broken: ValidationResult):
    doc = json.loads(broken.to_json())
    assert doc["success"] is False
    assert [s["name"] for s in doc["suites"]] == [*SUITES, "drift"]
    integrity = doc["suites"][SUITES.index("integrity")]
    dangling = next(o for o in integrity["expectations"] if o["name"] == "no_dangling_tails")
    assert dangling["examples"] == [{"head_id": 0, "relation_id": 2, "tail_id": 99, "reason": "unknown"}]
    assert dangling["expectation"] == "expect_table_row_count_to_equal"
    assert integrity["gx"][0]["suite_name"].startswith("integrity.")
    assert all(r["results"] for r in integrity["gx"])


def test_summary_is_small_and_for_the_manifest(broken: ValidationResult, valid: ValidationResult):
    summary = broken.summary()
    assert summary["success"] is False
    assert summary["failed"] == 4 and summary["checks"] == len(broken.outcomes())
    assert set(summary["failed_checks"]) == {o.name for o in broken.failed()}
    assert summary["suites"]["integrity"] is False and summary["suites"]["entities"] is True
    json.dumps(summary)
    assert valid.summary()["failed_checks"] == [] and "drift" not in valid.summary()["suites"]
