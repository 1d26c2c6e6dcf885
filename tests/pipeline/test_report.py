"""The per-run HTML report (pipeline/report.py) over a real sample run: the KG published for the date, KGCN versions
trained and gated for it, and a scoring run in the DuckDB warehouse."""

from __future__ import annotations

import html
import json
import re
import shutil
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline import kg_store, model_store
from pipeline.lake import MANIFEST, Lake, run_date_key
from pipeline.report import write_report
from pipeline.settings import load_settings
from pipeline.steps.promote import promote
from pipeline.steps.score import score
from pipeline.steps.train import train
from pipeline.warehouse import Warehouse
from tests.conftest import publish_sample

DAY = date(2026, 11, 21)
LATER = date(2026, 11, 22)
MODEL = "kgcn"


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, sample_mirrors) -> Path:
    """A home with the sample KG published for DAY, KGCN versions 1 and 2 trained for DAY (both gated) and version 3
    for LATER, and DAY scored with the promoted version into the DuckDB warehouse."""
    home = tmp_path_factory.mktemp("report-home")
    _, settings = publish_sample(home, sample_mirrors, DAY)
    for epochs in (3, 4):
        folder = train(settings, DAY, models=[MODEL], epochs=epochs)[0]
        promote(settings, MODEL, int(folder.name.removeprefix("version=")))
    assert train(settings, LATER, models=[MODEL], epochs=2)[0].name == "version=3"
    score(settings, DAY, model=MODEL, k=5, paths=1, progress=False)
    return home


def settings_of(home: Path):  # noqa: ANN201
    return load_settings(environ={"KGREC_HOME": str(home)})


def copy_home(home: Path, to: Path) -> Path:
    shutil.copytree(home, to, ignore=shutil.ignore_patterns("cache", "mirrors"))
    return to


def page(home: Path, day: date) -> str:
    return (home / "lake" / "reports" / f"run_date={day}" / "report.html").read_text(encoding="utf-8")


def samples(settings, day: date) -> list[dict]:  # noqa: ANN001
    """What the report must show: the first 3 users' top-5 of ``day`` in recommendations_enriched."""
    warehouse = Warehouse(settings.warehouse.url)
    try:
        return warehouse.frame(
            "select model, user_id, rank, title, explanation from recommendations_enriched where run_date = :d and "
            "rank <= 5 and user_id in (select distinct user_id from recommendations_enriched where run_date = :d "
            "order by user_id limit 3) order by model, user_id, rank", {"d": day}).to_dicts()
    finally:
        warehouse.dispose()


def test_the_report_shows_the_kg_the_models_their_gates_and_sample_explanations(tmp_path: Path, scored: Path) -> None:
    home = copy_home(scored, tmp_path / "home")
    settings = settings_of(home)
    result = write_report(settings, DAY)

    partition = home / "lake" / "reports" / "run_date=2026-11-21"
    assert result.path == str(partition / "report.html")
    assert {p.name for p in partition.iterdir()} == {"report.html", "facts.json", MANIFEST}
    lake = Lake(settings.lake_root)
    manifest = lake.manifest("reports", run_date_key(DAY))
    facts = json.loads((partition / "facts.json").read_text())
    assert facts == result.facts == manifest.extra
    assert set(manifest.attachments) == {"report.html", "facts.json"}
    assert lake.attachment("reports", run_date_key(DAY), "report.html") == (partition / "report.html").read_bytes()
    text = page(home, DAY)
    assert text.startswith("<!doctype html>") and "<h1>kgrec run 2026-11-21</h1>" in text

    # the KG built for the date, its counts, relations, alignment coverage and validation
    kg = kg_store.manifest(lake, 1).extra
    assert facts["kg"]["version"] == 1 and facts["kg"]["published"] is True
    assert facts["kg"]["counts"] == kg["counts"] and facts["kg"]["alignment"] == kg["alignment"]
    assert "version 1 (published)" in text
    assert f"{kg['validation']['checks']} checks passed" in text
    coverage = kg["alignment"]["coverage"]
    assert 0 < coverage <= 1
    assert (f"alignment coverage {coverage:.1%} ({kg['alignment']['aligned']:,} of {kg['alignment']['items']:,} "
            "items; per source: ") in text
    assert f"<td>{kg['counts']['triples']:,}</td>" in text
    for relation in kg["triples_by_relation"].values():
        assert f"<td class=l>{html.escape(relation['label'])}</td>" in text

    # the two versions trained for the date, each with its curve and gate decision; version 3 (LATER) is not listed
    assert [(m["model"], m["version"]) for m in facts["models"]] == [(MODEL, 1), (MODEL, 2)]
    assert len(re.findall(r"<svg [^>]*>.*?<polyline .*?</svg>", text)) == 2
    for m in facts["models"]:
        folder = model_store.path(home, MODEL, m["version"])
        epochs = (folder / "metrics.jsonl").read_text().splitlines()
        assert len(m["curve"]) == len(epochs) >= 3
        assert m["eval"] == model_store.read_json(folder / "eval.json")
        gate = model_store.read_json(folder / "gate.json")
        assert m["gate"] == gate
        assert f"<h3>kgcn version {m['version']} (KG version 1)</h3><p>{html.escape(gate['reason'])}</p>" in text
        assert f"over {len(epochs)} epochs" in text
    assert "first promoted version" in facts["models"][0]["gate"]["reason"]
    assert "kgcn version 3" not in text

    # the scoring run of the date, with sample explanations read from recommendations_enriched
    serving = model_store.serving(home, MODEL)
    assert [(r["model"], r["model_version"], r["kg_version"], r["status"], r["row_count"])
            for r in facts["scoring_runs"]] == [(MODEL, serving, 1, "succeeded", 1500)]
    assert f">{facts['scoring_runs'][0]['run_id'][:8]}</td>" in text
    shown = samples(settings, DAY)
    assert len(shown) == 15 and sum(1 for s in shown if s["explanation"]) >= 10
    assert "<h3>Sample explanations</h3>" in text
    for s in shown:
        assert html.escape(s["title"]) in text
        assert s["explanation"] is None or html.escape(s["explanation"]) in text
        assert s["explanation"] is None or s["explanation"].startswith("Recommended because ")
    assert result.summary().startswith("report: KG version 1, 2 model versions, 1 scoring runs -> file://")


def test_a_date_with_nothing_built_gives_a_page_that_says_so(tmp_path: Path) -> None:
    settings = settings_of(tmp_path)
    warehouse_file = Path(settings.warehouse.url.removeprefix("duckdb:///"))
    assert not warehouse_file.exists() and not settings.lake_root.exists()

    result = write_report(settings, DAY)
    assert result.facts["kg"] is None and result.facts["models"] == [] and result.facts["scoring_runs"] == []
    text = page(tmp_path, DAY)
    assert "<p>No KG was built for this date.</p>" in text
    assert "<p>No model was trained for this date.</p>" in text
    assert "<p>No scoring run for this date.</p>" in text
    assert "<svg" not in text and "Sample explanations" not in text
    assert json.loads((tmp_path / "lake" / "reports" / "run_date=2026-11-21" / "facts.json").read_text()) \
        == result.facts
    assert result.summary().startswith("report: KG version -, 0 model versions, 0 scoring runs")


def test_another_date_of_a_built_home_lists_nothing_of_day(tmp_path: Path, scored: Path) -> None:
    home = copy_home(scored, tmp_path / "home")
    other = date(2026, 10, 1)
    result = write_report(settings_of(home), other)
    assert (result.facts["kg"], result.facts["models"], result.facts["scoring_runs"]) == (None, [], [])
    text = page(home, other)
    assert "No KG was built for this date." in text and "No scoring run for this date." in text
    assert "Sample explanations" not in text


def test_rewriting_replaces_the_partition_with_updated_facts(tmp_path: Path, scored: Path) -> None:
    home = copy_home(scored, tmp_path / "home")
    settings = settings_of(home)
    lake = Lake(settings.lake_root)
    first = write_report(settings, DAY)
    assert len(first.facts["scoring_runs"]) == 1
    score(settings, DAY, model=MODEL, k=5, paths=1, progress=False)  # a re-run of the date's scoring

    second = write_report(settings, DAY)
    assert [(r["status"], r["row_count"]) for r in second.facts["scoring_runs"]] == [("superseded", 1500),
                                                                                    ("succeeded", 1500)]
    assert lake.partitions("reports") == [run_date_key(DAY)]
    assert sorted(p.name for p in (home / "lake" / "reports").iterdir() if not p.name.startswith(".")) \
        == ["run_date=2026-11-21"]
    facts = json.loads((home / "lake" / "reports" / "run_date=2026-11-21" / "facts.json").read_text())
    assert facts == second.facts == lake.manifest("reports", run_date_key(DAY)).extra
    text = page(home, DAY)
    assert "<td class=l>superseded</td>" in text and text.count("<td class=l>succeeded</td>") == 1
    assert "2 scoring runs" in second.summary()


def test_an_earlier_dates_report_keeps_its_samples_after_a_later_date_is_scored(tmp_path: Path, scored: Path) -> None:
    home = copy_home(scored, tmp_path / "home")
    settings = settings_of(home)
    score(settings, LATER, model=MODEL, k=5, paths=1, progress=False)
    result = write_report(settings, DAY)
    assert [r["status"] for r in result.facts["scoring_runs"]] == ["succeeded"]  # DAY's run is still live
    assert "<h3>Sample explanations</h3>" in page(home, DAY)


def test_a_sample_without_an_explanation_is_not_shown_as_none(tmp_path: Path, scored: Path) -> None:
    home = copy_home(scored, tmp_path / "home")
    settings = settings_of(home)
    warehouse = Warehouse(settings.warehouse.url)
    try:
        with warehouse.begin() as conn:  # the first user's top item has no path (as ~7% of the sample's items)
            conn.execute(sa.text("delete from recommendation_explanations where user_id = 'u0001' and item_id = "
                                 "(select item_id from recommendations where user_id = 'u0001' and rank = 1)"))
    finally:
        warehouse.dispose()
    shown = samples(settings, DAY)
    assert shown[0]["user_id"] == "u0001" and shown[0]["rank"] == 1 and shown[0]["explanation"] is None
    write_report(settings, DAY)
    row = re.search(r"<tr><td class=l>kgcn</td><td class=l>u0001</td><td>1</td>.*?</tr>", page(home, DAY))
    assert row is not None and html.escape(shown[0]["title"]) in row.group(0)
    assert "None" not in row.group(0)
