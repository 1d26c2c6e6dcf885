"""A per-run alignment report: coverage, timings, a score histogram, and the links a person should look at.

    report = render(links, title="wikidata films 2024-05-01", accept=0.9, review=0.6)
    (out / "report.html").write_text(report.html)
    (out / "scores.png").write_bytes(report.png)  # the page refers to it by ``png_name``

``links`` holds the cascade's ``LINKS`` columns (``DETAILS`` ones are optional). The page needs no
JavaScript and nothing from outside but the PNG; every string from the data is HTML-escaped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from html import escape

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kg_build.align.cascade import DETAILS, LINKS

STATUSES = ["accepted", "ambiguous", "unmatched"]
UNMATCHED = "—"  # the method row of items no matcher decided
COLOURS = {"exact_id": "tab:blue", "exact_label": "tab:green", "fuzzy": "tab:orange", "embedding": "tab:purple",
           "manual": "tab:gray"}
# Rows and stacks in cascade order, other methods after the known ones, then unmatched and the sum.
METHOD_RANK = pl.col("method").replace_strict(
    {**{m: i for i, m in enumerate(COLOURS)}, UNMATCHED: 98, "all": 99}, default=len(COLOURS), return_dtype=pl.Int32)
CSS = ("body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
       "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}td.n{text-align:right}.note{color:#a40}")
LINK_HEADER = ["source", "item_id", "item_name", "entity_name", "entity_iri", "method", "score", "margin", "runner-up"]


@dataclass(frozen=True)
class Report:
    html: str  # self-contained page except the PNG, which it references by png_name
    png: bytes  # score histogram, one subplot per source


def render(links: pl.DataFrame, *, title: str, timings: dict[str, dict[str, float]] | None = None,
           png_name: str = "scores.png", worst: int = 25, max_ambiguous: int = 500,
           accept: float | None = None, review: float | None = None) -> Report:
    """The report of one run's ``links``; ``timings`` is ``{source: {matcher or "total": seconds}}``.

    ``worst`` caps the lowest-scoring accepted links shown, ``max_ambiguous`` the ambiguous ones;
    ``accept`` and ``review`` (thresholds) are drawn as dashed lines on the histogram.
    """
    if worst < 0 or max_ambiguous < 0:
        raise ValueError(f"worst and max_ambiguous must be >= 0, got {worst} and {max_ambiguous}")
    links = _checked(links)
    by_score = ["score", "margin", "source", "item_id"]
    accepted = links.filter(pl.col("status") == "accepted").sort(by_score, nulls_last=True)
    ambiguous = links.filter(pl.col("status") == "ambiguous").sort(by_score, nulls_last=True)
    parts = [f"<h1>{escape(title)}</h1>", "<h2>Coverage</h2>"]
    for (source,), cov in _coverage(links).partition_by("source", as_dict=True, maintain_order=True).items():
        n = max(cov.filter(pl.col("method") == "all")["total"][0], 1)
        rows = [[escape(r["method"]), *[f'{r[c]} ({100 * r[c] / n:.1f}%)' for c in [*STATUSES, "total"]]]
                for r in cov.iter_rows(named=True)]
        parts += [f"<h3>{escape(str(source))}</h3>", _table(["method", *STATUSES, "total"], rows, numeric_from=1)]
    if timings:
        steps = list(dict.fromkeys(s for t in timings.values() for s in t if s != "total")) + ["total"]
        rows = [[escape(src), *[f"{t[s]:.2f}" if s in t else "" for s in steps]] for src, t in timings.items()]
        parts += ["<h2>Timings (seconds)</h2>", _table(["source", *map(escape, steps)], rows, numeric_from=1)]
    parts += ["<h2>Scores of decided links</h2>",
              f'<img src="{escape(png_name)}" alt="histogram of scores by method and source">',
              "<h2>Worst-scoring accepted links</h2>",
              f"<p>The {min(worst, accepted.height)} lowest of {accepted.height} accepted, by score then margin.</p>",
              _links_table(accepted.head(worst)), "<h2>Ambiguous links</h2>"]
    if ambiguous.height > max_ambiguous:
        parts.append(f'<p class="note">Showing the {max_ambiguous} lowest-scoring of {ambiguous.height} '
                     "ambiguous links; the review file lists them all.</p>")
    parts.append(_links_table(ambiguous.head(max_ambiguous)))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
    return Report(html=page, png=_histogram(links, accept=accept, review=review))


def _checked(links: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in LINKS if c not in links.columns]
    if missing:
        raise ValueError(f"links lack the column(s) {', '.join(missing)}; expected the cascade's LINKS columns")
    links = links.with_columns(pl.lit(None, t).alias(c) for c, t in DETAILS.items() if c not in links.columns)
    links = links.select(*LINKS, *DETAILS).cast(LINKS | DETAILS)  # type: ignore[arg-type]
    unknown = links.filter(~pl.col("status").is_in(STATUSES))["status"].unique().to_list()
    if unknown:
        raise ValueError(f"links have unknown status(es) {unknown}; expected one of {STATUSES}")
    return links


def _coverage(links: pl.DataFrame) -> pl.DataFrame:
    """Per source, one row per method (every known one, then others, ``—``, ``all``): counts per status."""
    counts = links.with_columns(pl.col("method").fill_null(UNMATCHED)).group_by("source", "method").agg(
        *[(pl.col("status") == s).sum().cast(pl.Int64).alias(s) for s in STATUSES],
        pl.len().cast(pl.Int64).alias("total"))
    known = pl.DataFrame({"method": [*COLOURS, UNMATCHED]}).join(links.select("source").unique(), how="cross")
    full = known.join(counts, on=["source", "method"], how="full", coalesce=True).fill_null(0)
    total = full.group_by("source").agg(pl.col(*STATUSES, "total").sum()).with_columns(method=pl.lit("all"))
    return pl.concat([full, total], how="diagonal").sort(
        "source", METHOD_RANK, "method")


def _links_table(rows: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        return "" if value is None else escape(str(value))

    def num(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    body = []
    for r in rows.iter_rows(named=True):
        iri = cell(r["entity_iri"])
        link = f'<a href="{iri}">{iri}</a>' if iri.startswith(("http://", "https://")) else iri
        runner = r["runner_up_name"] or r["runner_up_iri"]
        has_runner = runner is not None or r["runner_up_score"] is not None
        runner_up = f"{cell(runner)} ({num(r['runner_up_score'])})" if has_runner else ""
        body.append([cell(r["source"]), cell(r["item_id"]), cell(r["item_name"]), cell(r["entity_name"]), link,
                     cell(r["method"]), num(r["score"]), num(r["margin"]), runner_up])
    return _table(LINK_HEADER, body, numeric_from=6, numeric_to=8) if body else "<p>None.</p>"


def _table(header: list[str], rows: list[list[str]], *, numeric_from: int, numeric_to: int | None = None) -> str:
    """An HTML table of already-escaped cells; columns ``numeric_from:numeric_to`` are right-aligned."""
    def td(i: int, c: str) -> str:
        return f'<td class="n">{c}</td>' if numeric_from <= i < (numeric_to or len(header)) else f"<td>{c}</td>"

    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(td(i, c) for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _histogram(links: pl.DataFrame, *, accept: float | None, review: float | None) -> bytes:
    """Stacked histograms (40 bins over 0..1) of the decided links' scores by method, one subplot per source."""
    scores = links.filter(pl.col("status") != "unmatched").group_by("source", "method").agg("score")
    scores = scores.sort(METHOD_RANK, "method")
    sources = links["source"].unique().sort().to_list() or [None]
    fig = Figure(figsize=(8, 0.6 + 2.4 * len(sources)), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, source in zip(fig.subplots(len(sources), 1, squeeze=False)[:, 0], sources, strict=True):
        mine = scores.filter(pl.col("source").eq_missing(source))
        if mine.height:
            ax.hist(mine["score"].to_list(), bins=[i / 40 for i in range(41)], stacked=True,
                    label=mine["method"].to_list(), color=[COLOURS.get(m, "tab:brown") for m in mine["method"]])
        else:
            ax.text(0.5, 0.5, "no links", ha="center", va="center", transform=ax.transAxes)
        for value, name in ((accept, "accept"), (review, "review")):
            if value is not None:
                ax.axvline(value, linestyle="--", color="black" if name == "accept" else "gray",
                           label=f"{name} {value:g}")
        ax.set(xlim=(0, 1), title="" if source is None else str(source), xlabel="score", ylabel="links")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()
