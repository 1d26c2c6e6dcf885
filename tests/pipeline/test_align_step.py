"""The align step and `kgrec align` / `kgrec align-eval` on the sample, against real mirrors."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from kg_build.align.aligner import AlignError
from pipeline.lake import Lake
from pipeline.settings import load_settings
from pipeline.steps.align import align
from pipeline.steps.extract import extract, extract_facts
from pipeline.steps.ingest import ingest
from tests.conftest import SAMPLE, free_port, kgrec

DAY = date(2026, 11, 21)
KEY = {"run_date": "2026-11-21"}
WD = "http://www.wikidata.org/entity/"
ITEMS = SAMPLE / "catalog" / "items.csv"


@pytest.fixture(scope="module")
def mirrors(sample_mirrors) -> dict[str, str]:
    return sample_mirrors


def test_align_step_writes_links_review_and_report_and_keeps_overrides(tmp_path: Path, mirrors):
    settings = load_settings(environ={"KGREC_HOME": str(tmp_path), **mirrors})
    with pytest.raises(AlignError, match="no catalog for 2026-11-21: run `kgrec ingest --date 2026-11-21` first"):
        align(settings, DAY)
    ingest(settings, DAY)
    with pytest.raises(AlignError, match="no wikidata candidates .* run `kgrec extract"):
        align(settings, DAY)
    extract(settings, DAY)
    result = align(settings, DAY)

    lake = Lake(tmp_path / "lake")
    lake.verify("alignment", KEY)  # tables and attachments match the manifest
    manifest = lake.manifest("alignment", KEY)
    assert set(manifest.attachments) == {"review.csv", "report.html", "scores.png"}
    links = lake.read("alignment", KEY, "links")
    assert links.columns == ["item_id", "entity_iri", "source", "method", "score", "margin", "status"]
    assert links.height == 2 * 201  # one row per item and source
    summary = manifest.extra["summary"]
    assert summary["wikidata"]["accepted"] == 198 and summary["wikidata"]["unmatched"] == 3
    assert summary["dbpedia"]["accepted"] == 87
    wd = {r["item_id"]: r for r in links.filter(pl.col("source") == "wikidata").iter_rows(named=True)}
    assert (wd["m0104"]["entity_iri"], wd["m0104"]["method"]) == (WD + "Q151599", "exact_label")  # no IMDb id
    assert {wd[i]["status"] for i in ("m0199", "m0200", "m0201")} == {"unmatched"}  # not in the KG
    assert wd["m0039"]["entity_iri"] != wd["m0040"]["entity_iri"]  # Psycho 1960 and its 1998 remake
    accepted = links.filter(pl.col("status") == "accepted")
    assert accepted.group_by("source", "entity_iri").len()["len"].max() == 1  # one item per entity
    assert lake.attachment("alignment", KEY, "scores.png")[:4] == b"\x89PNG"
    report = lake.attachment("alignment", KEY, "report.html").decode()
    assert "exact_label" in report and "scores.png" in report
    assert "198 accepted" in result.summary()

    # A person's correction, kept outside the lake, survives the next nightly run.
    overrides = tmp_path / "alignment" / "overrides.csv"
    overrides.parent.mkdir()
    overrides.write_text(f"item_id,entity_iri,note,source\nm0104,NONE,checking the 2001 anime,wikidata\n"
                         f"m0199,{WD}Q1,test link,wikidata\n")
    align(settings, DAY)
    again = lake.read("alignment", KEY, "links").filter(pl.col("source") == "wikidata")
    fixed = {r["item_id"]: r for r in again.filter(pl.col("method") == "manual").iter_rows(named=True)}
    assert (fixed["m0104"]["status"], fixed["m0104"]["entity_iri"]) == ("unmatched", None)
    assert (fixed["m0199"]["status"], fixed["m0199"]["entity_iri"]) == ("accepted", WD + "Q1")
    assert lake.manifest("alignment", KEY).inputs[0]["path"] == str(overrides)


def test_facts_wait_for_the_alignment_when_configured(tmp_path: Path, mirrors):
    settings = load_settings(environ={"KGREC_HOME": str(tmp_path), "KGREC_EXTRACT__FACT_ENTITIES": "aligned",
                                      **mirrors})
    ingest(settings, DAY)
    extract(settings, DAY)
    lake = Lake(tmp_path / "lake")
    part = {"source": "wikidata", **KEY}
    assert set(lake.manifest("raw_triples", part).files) == {"candidates"}
    align(settings, DAY)
    extract_facts(settings, DAY)
    manifest = lake.manifest("raw_triples", part)
    assert set(manifest.files) == {"candidates", "facts"}
    assert manifest.extra["fact_entities"] == 198  # the accepted links, not all 203 candidates
    facts = lake.read("raw_triples", part, "facts")
    assert facts["subject"].n_unique() >= 198


def test_standalone_align_and_eval_on_the_sample(tmp_path: Path, sample_wikidata: str):
    home = {"KGREC_HOME": str(tmp_path / "home")}
    common = ["align", "--catalog", str(ITEMS), "--catalog-format", "sample", "--source", "wikidata",
              "--endpoint", sample_wikidata]
    normal = kgrec(*common, "--out", str(tmp_path / "normal.parquet"), env=home)
    assert normal.returncode == 0, normal.stderr
    assert "197 accepted" not in normal.stdout and "exact_id 197" in normal.stdout
    blind = kgrec(*common, "--no-exact-id", "--out", str(tmp_path / "out" / "blind.parquet"), env=home)
    assert blind.returncode == 0, blind.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["blind.parquet", "blind.report.html", "blind.review.csv", "blind.scores.png"]
    links = pl.read_parquet(tmp_path / "out" / "blind.parquet")
    assert "exact_id" not in links["method"].to_list() and "runner_up_iri" in links.columns

    graded = kgrec("align-eval", "--links", str(tmp_path / "out" / "blind.parquet"), "--gold",
                   str(tmp_path / "normal.parquet"), env=home)
    assert graded.returncode == 0, graded.stderr
    overall = next(line for line in graded.stdout.splitlines() if line.startswith("all "))
    assert overall.split()[1:] == ["197", "197", "1.0000", "1.0000", "1.0000"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item_id,title,year\n", "has no usable items"),
        ("item_id,title,year\n1,,1999\n2,   ,2000\n", "has no usable items \\(2 rows quarantined"),
        ("item_id,title,year\n1,Heat,1995\n2,Toy Story,1995\n1,Heat 2,1995\n",
         "1 duplicate item id\\(s\\).*items.csv:4: duplicate item_id 1 \\(first on line 2\\)"),
        ("id,name\n1,Heat\n", "header lacks the required column\\(s\\) item_id, title"),
    ],
)
def test_standalone_align_refuses_bad_catalogs_and_writes_nothing(tmp_path: Path, sample_wikidata, text, message):
    catalog = tmp_path / "items.csv"
    catalog.write_text(text)
    out = tmp_path / "out" / "links.parquet"
    done = kgrec("align", "--catalog", str(catalog), "--catalog-format", "csv", "--source", "wikidata",
                 "--endpoint", sample_wikidata, "--out", str(out), env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert re.search(message, done.stderr), done.stderr
    assert not out.parent.exists()


def test_standalone_align_with_titles_of_only_punctuation_leaves_them_unmatched(tmp_path: Path, sample_wikidata):
    catalog = tmp_path / "items.csv"
    catalog.write_text("item_id,title,year\n1,?!,1999\n2,\"Dark Knight, The\",2008\n")
    out = tmp_path / "links.parquet"
    done = kgrec("align", "--catalog", str(catalog), "--catalog-format", "csv", "--source", "wikidata",
                 "--endpoint", sample_wikidata, "--out", str(out), env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "1 items have no usable title (empty or only punctuation)" in done.stderr
    status = dict(pl.read_parquet(out).select("item_id", "status").iter_rows())
    assert status == {"1": "unmatched", "2": "accepted"}


def test_standalone_align_names_an_unreachable_endpoint(tmp_path: Path):
    out = tmp_path / "links.parquet"
    endpoint = f"http://127.0.0.1:{free_port()}/query"
    done = kgrec("align", "--catalog", str(ITEMS), "--catalog-format", "sample", "--source", "wikidata",
                 "--endpoint", endpoint, "--out", str(out), env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert endpoint in done.stderr and "check the endpoint URL" in done.stderr
    assert not out.exists()


def test_align_flags_need_catalog(tmp_path: Path):
    done = kgrec("align", "--source", "wikidata", env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 1 and "need --catalog" in done.stderr
    done = kgrec("align", "--catalog", str(ITEMS), env={"KGREC_HOME": str(tmp_path)})
    assert done.returncode == 1 and "--catalog needs --catalog-format, --source, --out" in done.stderr
