"""The alignment report: coverage counts, escaping, ordering, truncation, a real PNG, and empty runs."""

from __future__ import annotations

import io
import re

import polars as pl
import pytest
from matplotlib.image import imread

from kg_build.align.cascade import DETAILS, LINKS
from kg_build.align.report import Report, render

WD = "http://www.wikidata.org/entity/"
NASTY = '<b>&"Q'  # a name with every character HTML cares about


def link(item: str, status: str, method: str | None = None, score: float = 0.0, *, source: str = "wikidata",
         margin: float | None = None, name: str | None = None, runner: tuple[str, float] | None = None) -> dict:
    """One row of links; unmatched rows have no entity."""
    iri = None if status == "unmatched" else f"{WD}Q{item}"
    return {"item_id": item, "entity_iri": iri, "source": source, "method": method, "score": score,
            "margin": score if margin is None else margin, "status": status, "item_name": name or f"item {item}",
            "entity_name": None if iri is None else f"entity {item}", "runner_up_iri": runner and f"{WD}R{item}",
            "runner_up_name": runner and runner[0], "runner_up_score": runner and runner[1]}


@pytest.fixture
def links() -> pl.DataFrame:
    rows = [
        link("1", "accepted", "exact_id", 1.0),
        link("2", "accepted", "exact_label", 1.0),
        link("3", "accepted", "exact_label", 1.0),
        link("4", "accepted", "fuzzy", 0.93, margin=0.2, name=NASTY, runner=(NASTY + " 2", 0.73)),
        link("5", "accepted", "fuzzy", 0.91, margin=0.3),
        link("6", "accepted", "embedding", 0.91, margin=0.1),  # same score as 5, smaller margin: shown first
        link("7", "accepted", "manual", 1.0),
        link("8", "ambiguous", "fuzzy", 0.8, margin=0.0, runner=("Psycho (1998)", 0.8)),
        link("9", "ambiguous", "embedding", 0.65, margin=0.02, runner=("other", 0.63)),
        link("10", "ambiguous", "exact_label", 1.0, margin=0.0, runner=("twin", 1.0)),
        link("11", "unmatched"),
        link("12", "unmatched"),
        link("1", "accepted", "exact_label", 1.0, source="dbpedia"),
        link("2", "ambiguous", "fuzzy", 0.7, source="dbpedia"),
        link("3", "unmatched", source="dbpedia"),
    ]
    return pl.DataFrame(rows, schema=LINKS | DETAILS)


def coverage_row(page: str, source: str, method: str) -> list[str]:
    """The cells of one method's row in one source's coverage table."""
    section = page.split(f"<h3>{source}</h3>", 1)[1].split("</table>", 1)[0]
    row = re.search(rf"<tr><td>{re.escape(method)}</td>(.*?)</tr>", section)
    assert row, f"no {method} row for {source}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def item_order(table: str) -> list[str]:
    return re.findall(r"<tr><td>\w+</td><td>(\d+)</td>", table)


def test_coverage_counts_per_source_method_and_status(links):
    page = render(links, title="run").html
    assert coverage_row(page, "wikidata", "exact_label") == ["2 (16.7%)", "1 (8.3%)", "0 (0.0%)", "3 (25.0%)"]
    assert coverage_row(page, "wikidata", "manual") == ["1 (8.3%)", "0 (0.0%)", "0 (0.0%)", "1 (8.3%)"]
    assert coverage_row(page, "wikidata", "—") == ["0 (0.0%)", "0 (0.0%)", "2 (16.7%)", "2 (16.7%)"]
    assert coverage_row(page, "wikidata", "all") == ["7 (58.3%)", "3 (25.0%)", "2 (16.7%)", "12 (100.0%)"]
    assert coverage_row(page, "dbpedia", "exact_id") == ["0 (0.0%)"] * 4  # every known method has a row
    assert coverage_row(page, "dbpedia", "all") == ["1 (33.3%)", "1 (33.3%)", "1 (33.3%)", "3 (100.0%)"]
    assert page.index("<h3>dbpedia</h3>") < page.index("<h3>wikidata</h3>")


def test_data_and_title_are_escaped_and_the_page_is_self_contained(links):
    page = render(links, title='films <2024> & "friends"', png_name="a&b.png").html
    assert "<title>films &lt;2024&gt; &amp; &quot;friends&quot;</title>" in page
    assert "&lt;b&gt;&amp;&quot;Q" in page and NASTY not in page
    assert f"{NASTY} 2" not in page and "&lt;b&gt;&amp;&quot;Q 2 (0.730)" in page  # runner-up name and score
    assert '<img src="a&amp;b.png"' in page
    assert f'<a href="{WD}Q4">{WD}Q4</a>' in page
    assert "<script" not in page and "stylesheet" not in page and "//" not in page.replace(WD, "")


def test_worst_accepted_lowest_score_then_margin_first(links):
    page = render(links, title="run", worst=3).html
    worst = page.split("<h2>Worst-scoring accepted links</h2>", 1)[1].split("<h2>", 1)[0]
    assert item_order(worst) == ["6", "5", "4"]
    assert "The 3 lowest of 8 accepted" in worst


def test_ambiguous_sorted_by_score_and_truncated_with_a_note(links):
    full = render(links, title="run").html.split("<h2>Ambiguous links</h2>", 1)[1]
    assert item_order(full) == ["9", "2", "8", "10"]
    assert 'class="note"' not in full
    cut = render(links, title="run", max_ambiguous=2).html.split("<h2>Ambiguous links</h2>", 1)[1]
    assert item_order(cut) == ["9", "2"]
    assert "Showing the 2 lowest-scoring of 4 ambiguous links" in cut


def test_timings_table(links):
    page = render(links, title="run", timings={"wikidata": {"exact_id": 0.5, "fuzzy": 12.345, "total": 13.0},
                                               "dbpedia": {"fuzzy": 1.0, "total": 1.25}}).html
    assert "<th>source</th><th>exact_id</th><th>fuzzy</th><th>total</th>" in page
    assert '<td>dbpedia</td><td class="n"></td><td class="n">1.00</td><td class="n">1.25</td>' in page
    assert "Timings" not in render(links, title="run").html


def test_png_is_a_real_histogram_one_subplot_per_source(links):
    report = render(links, title="run", accept=0.9, review=0.6)
    assert isinstance(report, Report) and report.png.startswith(b"\x89PNG")
    image = imread(io.BytesIO(report.png))
    assert image.shape[1] == 800 and 400 < image.shape[0] < 700 and image.shape[2] in (3, 4)
    assert image.std() > 0  # something is drawn
    assert render(links, title="run", accept=0.9, review=0.6).png == report.png  # deterministic


@pytest.mark.parametrize("frame", [pl.DataFrame(schema=LINKS | DETAILS), pl.DataFrame(schema=LINKS)])
def test_empty_links_give_an_empty_report(frame):
    report = render(frame, title="nothing", timings={}, accept=0.9)
    assert "<h1>nothing</h1>" in report.html and "The 0 lowest of 0 accepted" in report.html
    assert imread(io.BytesIO(report.png)).shape[1] == 800


def test_a_source_with_only_unmatched_items_still_gets_a_plot():
    frame = pl.DataFrame([link("1", "unmatched")], schema=LINKS | DETAILS)
    report = render(frame, title="run")
    assert coverage_row(report.html, "wikidata", "—")[-1] == "1 (100.0%)"
    assert report.png.startswith(b"\x89PNG")


def test_bad_input_is_refused_with_a_clear_message(links):
    with pytest.raises(ValueError, match="lack the column.*margin"):
        render(links.drop("margin"), title="run")
    with pytest.raises(ValueError, match="unknown status.*'maybe'"):
        render(links.with_columns(pl.lit("maybe").alias("status")), title="run")
    with pytest.raises(ValueError, match="max_ambiguous must be >= 0"):
        render(links, title="run", max_ambiguous=-1)
