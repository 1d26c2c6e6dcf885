"""Benchmark: aligning ml-latest-small (9,742 movies) to its 9,549 Wikidata candidates.

    .venv/bin/python bench/align.py [--quick] [--scales 1,10,100] [--embedding-max-scale 10] [--out FILE]

Pulls the candidates from a local oxigraph mirror of ../shared/data/wikidata-movielens-small, then:

1. **Matchers and cascades**: each matcher alone and the cascades with and without ``exact_id``,
   each in a fresh process (``spawn``) so its peak RSS (``VmHWM``) is its own; the embedding
   matcher runs cold (empty vector cache, model load included and also reported apart).
2. **Fuzzy scorers**: on a noisy copy of the catalog (typos, punctuation, swapped words, dropped
   articles, "&"/"and"), the ``fuzzy`` matcher alone with each scorer of ``SCORERS``, then the
   winner at several cutoffs; the ``embedding`` matcher's cutoff likewise on a copy with subtitles
   dropped, kept alone, swapped or added.
3. **Scaling**: the candidate set grown 10x and 100x by distractors (remakes, sequels, subtitled
   and misspelt titles under ``http://kgrec.invalid/distractor/N``), matcher times, peak RSS and
   precision/recall at each scale.

Gold is the accepted ``exact_id`` links of the run with all four matchers (right by construction:
shared IMDb ids). Precision and recall are those of :mod:`kg_build.align.evaluate`, over gold
items. Prints Markdown tables for the README (and writes them to ``--out``). ``--quick`` is a
smoke run on 1,500 items and their candidates at scales 1 and 2, not for the README.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Only what the child processes need is imported here: they re-import this module (spawn), and
# their baseline RSS should not include the mirror, the SPARQL client or pytest.
from kg_build.align.aligner import AlignConfig, align, entities_side  # noqa: E402
from kg_build.align.embedding import Encoder  # noqa: E402
from kg_build.align.evaluate import Scores, evaluate  # noqa: E402
from kg_build.align.fuzzy import SCORERS  # noqa: E402
from kg_build.align.names import item_names  # noqa: E402
from kg_build.catalog import load_movielens  # noqa: E402
from kg_build.sources import load_definitions  # noqa: E402

DEFINITION = load_definitions()["wikidata"]
RDFS_LABEL = DEFINITION.expand("rdfs:label")
RELEASED = DEFINITION.expand("wdt:P577")
IMDB = DEFINITION.expand("wdt:P345")
DISTRACTOR_IRI = "http://kgrec.invalid/distractor/"
NO_EXACT_ID = ("exact_label", "fuzzy", "embedding")
ALL_FOUR = ("exact_id", *NO_EXACT_ID)
DEFAULT = AlignConfig()
AMBIGUOUS = "ambiguous (best = gold)"

# Distractors per real candidate: kind -> (weight, year shifts it may take).
DISTRACTOR_KINDS = {
    "remake": 0.30,  # same label, released 2-30 years earlier or later
    "sequel": 0.25,  # label + " 2" / " II" / " Part 2" ..., 1-8 years later
    "subtitle": 0.25,  # label + ": The Return" ..., 0-30 years apart
    "typo": 0.20,  # one character changed, inserted, dropped or two swapped; 2-30 years apart (5%: same year)
}
SEQUEL_SUFFIXES = (" 2", " II", " 3", " Part 2", " Returns", " Part II")
SUBTITLES = ("The Return", "Reloaded", "Origins", "The Beginning", "Revenge", "Legacy", "Redemption",
             "Resurrection", "The Final Chapter", "The Lost Tapes")
TYPO_SAME_YEAR = 0.02
# The subtitle/word-order catalog (embedding): what a name may gain.
TITLE_SUFFIXES = ("The Movie", "Director's Cut", "Special Edition", "The Motion Picture")
POSSESSIVES = ("Disney's", "Walt Disney's", "John Carpenter's", "Tim Burton's", "Stephen King's", "Wes Craven's",
               "Alfred Hitchcock's", "Steven Spielberg's")
ROMAN = {"2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "II": "2", "III": "3", "IV": "4", "V": "5", "VI": "6"}


# -- child processes: one alignment each ---------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One alignment, run in a fresh process; its results come back as a ``Run``."""

    label: str
    items: pl.DataFrame
    triples: Path  # candidate triples, Parquet
    matchers: tuple[str, ...]
    fuzzy_scorer: str = DEFAULT.fuzzy_scorer
    fuzzy_cutoff: float = DEFAULT.fuzzy_cutoff
    embedding_cutoff: float = DEFAULT.embedding_cutoff
    cache_dir: Path | None = None  # embedding vectors; None or empty: cold


@dataclass(frozen=True)
class Run:
    job: Job
    links: pl.DataFrame
    timings: dict[str, float]
    candidates: int
    cpu_s: float  # user + system seconds of the whole child (all threads), less noisy than wall time
    rss_imports_mb: float
    rss_data_mb: float
    rss_peak_mb: float
    model_load_s: float = 0.0
    encoded: int = 0  # texts the model embedded (not from the cache)
    encode_s: float = 0.0
    load: float = 0.0  # the machine's 1-minute load average when the alignment ended
    scores: Scores | None = None  # vs gold, filled in by the parent

    def rate(self) -> float:
        """Texts embedded per second (0 when none were)."""
        return self.encoded / self.encode_s if self.encoded and self.encode_s > 0 else 0.0

    def status(self, status: str) -> int:
        return self.links.filter(pl.col("status") == status).height


class TimedEncoder(Encoder):
    """The matcher's encoder, timing the model load and the encoding apart."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.load_s = self.encode_s = 0.0

    def encode(self, texts: list[str]) -> np.ndarray:
        began, loaded = time.perf_counter(), self.load_s
        vectors = super().encode(texts)
        self.encode_s += time.perf_counter() - began - (self.load_s - loaded)
        return vectors

    def _model_(self):  # noqa: ANN202 - a SentenceTransformer
        if self._model is not None:
            return self._model
        began = time.perf_counter()
        model = super()._model_()
        self.load_s += time.perf_counter() - began  # imports (torch) + weights
        return model


def run_job(job: Job) -> Run:
    """In the child: load the candidates, align, and read the peak RSS."""
    rss_imports = _maxrss_mb()
    triples = pl.read_parquet(job.triples)
    rss_data = _maxrss_mb()
    encoder = TimedEncoder(cache_dir=job.cache_dir)
    config = AlignConfig(matchers=job.matchers, fuzzy_scorer=job.fuzzy_scorer, fuzzy_cutoff=job.fuzzy_cutoff,
                         embedding_cutoff=job.embedding_cutoff, cache_dir=job.cache_dir)
    alignment = align(job.items, triples, definition=DEFINITION, domain="films", config=config, encoder=encoder)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Run(job, alignment.links, alignment.timings, alignment.candidates, usage.ru_utime + usage.ru_stime,
               rss_imports, rss_data, _maxrss_mb(), encoder.load_s, encoder.encoded, encoder.encode_s,
               os.getloadavg()[0])


def _maxrss_mb() -> float:
    """This process's peak RSS so far, in MB: ``VmHWM``, not ``ru_maxrss``.

    A spawned child is forked from the parent and then exec'd, and Linux carries the high-water mark
    of the forked copy (all the parent's resident pages) into ``ru_maxrss`` across the exec: a child
    of a 1.5 GB parent reports at least 1.5 GB. ``VmHWM`` belongs to the exec'd image alone.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB; see above


def in_child(job: Job, gold: pl.DataFrame | None) -> Run:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        run = pool.submit(run_job, job).result()
    print(f"  {job.label}: {run.timings['total']:.1f} s, peak {run.rss_peak_mb:,.0f} MB, load {run.load:.2f}",
          file=sys.stderr, flush=True)
    return replace(run, scores=evaluate(run.links, gold).overall) if gold is not None else run


# -- inputs ------------------------------------------------------------------------------------------
def pull_candidates(path: Path, workdir: Path) -> float:
    """Candidate triples from a local mirror to ``path``; returns the seconds the pull took."""
    from kg_build.cache import QueryCache
    from kg_build.extract import Extractor
    from kg_build.sparql import SparqlClient
    from pipeline import mirror
    from tests.conftest import SHARED_DATA, free_port

    spec = mirror.MirrorSpec("bench-align", free_port(),
                             mirror.expand_files(sorted((SHARED_DATA / "wikidata-movielens-small").glob("*.nt.gz"))))
    mirror.start(spec, workdir)
    try:
        client = SparqlClient(spec.endpoint, user_agent="kgrec-bench")
        extractor = Extractor(DEFINITION, DEFINITION.domain("films"), client, QueryCache(workdir / "cache"))
        began = time.perf_counter()
        extractor.candidate_triples(extractor.candidates()).write_parquet(path)
        return time.perf_counter() - began
    finally:
        mirror.stop(workdir, spec.name)


def subsample(items: pl.DataFrame, triples: pl.DataFrame, n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` items, the candidates sharing their IMDb ids and as many other candidates (--quick)."""
    items = items.sample(n, seed=seed).sort("item_id")
    ids = items["imdb_id"].drop_nulls().to_list()
    theirs = triples.filter((pl.col("predicate") == IMDB) & pl.col("object").is_in(ids))["subject"].to_list()
    others = triples.filter(~pl.col("subject").is_in(theirs))["subject"].unique().sort()
    keep = theirs + others.sample(min(n, others.len()), seed=seed).to_list()
    return items, triples.filter(pl.col("subject").is_in(keep))


# -- perturbed catalogs ---------------------------------------------------------------------------
_MAIN = re.compile(r"^(.+?)((?:\s+\(.*)?)$")  # the main title, then MovieLens' "(alternative titles)"
_PUNCT = re.compile(r"[:,.!?'-]")


def perturb_titles(items: pl.DataFrame, edit, seed: int) -> pl.DataFrame:  # noqa: ANN001 - (str, Random) -> str
    """``items`` with ``edit`` applied to the main part of every title (alternatives kept)."""
    rng = random.Random(seed)
    titles = []
    for title in items["title"].to_list():
        main, rest = _MAIN.match(title).groups()  # type: ignore[union-attr]
        titles.append(edit(main, rng) + rest)
    return items.with_columns(pl.Series("title", titles))


def noisy(main: str, rng: random.Random) -> str:
    """One or two edits of a catalog that was typed in: typos, punctuation, word order, articles, "&"."""
    for _ in range(rng.choice((1, 2))):
        kind = rng.choices(("typo", "punct", "swap", "article", "amp"), weights=(45, 15, 15, 10, 15))[0]
        main = _EDITS[kind](main, rng) or _typo(main, rng)
    return main


def _typo(s: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(s) if c.isalnum()]
    if len(s) < 3 or not letters:
        return s
    i, c = rng.choice(letters), rng.choice("abcdefghijklmnopqrstuvwxyz")
    op = rng.choice(("substitute", "drop", "insert", "transpose"))
    if op == "substitute":
        return s[:i] + c + s[i + 1:]
    if op == "drop":
        return s[:i] + s[i + 1:]
    if op == "insert":
        return s[:i] + c + s[i:]
    i = min(i, len(s) - 2)
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]


def _punct(s: str, rng: random.Random) -> str:
    marks = [m.start() for m in _PUNCT.finditer(s)]
    if marks and rng.random() < 0.5:
        i = rng.choice(marks)
        return s[:i] + s[i + 1:]
    spaces = [i for i, c in enumerate(s) if c == " "]
    if not spaces:
        return s + rng.choice("!.")
    i = rng.choice(spaces)
    return s[:i] + rng.choice((":", ",", " -", ".")) + s[i:]


def _swap(s: str, rng: random.Random) -> str | None:
    words = s.split(" ")
    if len(words) < 2:
        return None
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _article(s: str, rng: random.Random) -> str | None:
    dropped = re.sub(r",\s+(The|A|An)$|^(The|A|An)\s+", "", s)
    return dropped if dropped != s else None


def _amp(s: str, rng: random.Random) -> str | None:
    if " & " in s:
        return s.replace(" & ", " and ")
    return s.replace(" and ", " & ", 1) if " and " in s else None


_EDITS = {"typo": _typo, "punct": _punct, "swap": _swap, "article": _article, "amp": _amp}


def reworded(main: str, rng: random.Random) -> str:
    """Subtitles and word order as catalogs differ from Wikidata: "Star Wars: Episode IV - A New Hope" ->
    "A New Hope", "Alien: Resurrection" -> "Alien", "X" -> "X: The Movie", "Disney's X", "Rocky II" -> "Rocky 2"."""
    parts = [p for p in re.split(r"\s*:\s+|\s+-\s+", main) if p]
    if len(parts) > 1:
        kind = rng.choice(("subtitle only", "no subtitle", "swapped"))
        if kind == "subtitle only":
            return parts[-1]
        if kind == "no subtitle":
            return ": ".join(parts[:-1])
        return f"{parts[-1]}: {' '.join(parts[:-1])}"
    number = re.search(r"\s([2-6]|II|III|IV|V|VI)$", main)
    if number and rng.random() < 0.7:
        return main[:number.start(1)] + ROMAN[number.group(1)]
    if rng.random() < 0.5:
        return f"{main}: {rng.choice(TITLE_SUFFIXES)}"
    return f"{rng.choice(POSSESSIVES)} {main}"


def core_changed(original: pl.DataFrame, perturbed: pl.DataFrame) -> float:
    """Share of items whose main title's ``core`` (the key exact_label joins on) changed."""
    def cores(items: pl.DataFrame) -> pl.DataFrame:
        return item_names(items).filter(pl.col("primary")).unique("id").select("id", "core")

    both = cores(original).join(cores(perturbed), on="id", suffix="_new")
    return both.filter(pl.col("core") != pl.col("core_new")).height / both.height


# -- distractors ------------------------------------------------------------------------------------
def with_distractors(triples: pl.DataFrame, scale: int, seed: int) -> tuple[pl.DataFrame, int]:
    """``triples`` plus up to ``scale - 1`` distractor films per dated real candidate, each with a label,
    a P577 date and an IMDb id of its own, and how many were dropped as duplicates of a real candidate
    (the same ``core`` name, years within the tolerance: no matcher can tell those apart, nor should
    it). Vectorised: no per-row Python."""
    if scale <= 1:
        return triples, 0
    dates = triples.filter(pl.col("predicate") == RELEASED).group_by("subject").agg(pl.col("object").min())
    originals = triples.filter(pl.col("predicate") == RDFS_LABEL).select("subject", pl.col("object").alias("label"))
    originals = originals.unique("subject", keep="first").sort("subject").join(
        dates.rename({"object": "date"}), on="subject", how="inner")
    n = originals.height * (scale - 1)
    rng = np.random.default_rng(seed)
    kinds = list(DISTRACTOR_KINDS)
    kind = rng.choice(len(kinds), size=n, p=list(DISTRACTOR_KINDS.values()))
    sign = rng.choice((-1, 1), size=n)
    shift = np.select(
        [kind == kinds.index("remake"), kind == kinds.index("sequel"), kind == kinds.index("subtitle")],
        [sign * rng.integers(2, 31, n), rng.integers(1, 9, n), sign * rng.integers(0, 31, n)],
        default=np.where(rng.random(n) < TYPO_SAME_YEAR, 0, sign * rng.integers(2, 31, n)),
    )
    copies = originals[np.repeat(np.arange(originals.height), scale - 1)].with_columns(
        pl.Series("kind", np.array(kinds)[kind]),
        pl.Series("shift", shift.astype(np.int32)),
        pl.Series("u", rng.random(n)),
        pl.Series("op", rng.integers(0, 4, n).astype(np.int8)),
        pl.Series("char", np.array(list("abcdefghijklmnopqrstuvwxyz"))[rng.integers(0, 26, n)]),
        pl.Series("sequel", np.array(SEQUEL_SUFFIXES)[rng.integers(0, len(SEQUEL_SUFFIXES), n)]),
        pl.Series("subtitle", np.array(SUBTITLES)[rng.integers(0, len(SUBTITLES), n)]),
        (pl.lit(DISTRACTOR_IRI) + pl.int_range(pl.len()).cast(pl.String)).alias("iri"),
    )
    label, at, c = pl.col("label"), (pl.col("u") * (pl.col("label").str.len_chars() - 1)).cast(pl.Int64), pl.col("char")
    typo = (
        pl.when(pl.col("op") == 0).then(pl.concat_str(label.str.slice(0, at), c, label.str.slice(at + 1)))
        .when(pl.col("op") == 1).then(pl.concat_str(label.str.slice(0, at), label.str.slice(at + 1)))
        .when(pl.col("op") == 2).then(pl.concat_str(label.str.slice(0, at), c, label.str.slice(at)))
        .otherwise(pl.concat_str(label.str.slice(0, at), label.str.slice(at + 1, 1), label.str.slice(at, 1),
                                 label.str.slice(at + 2)))
    )
    year = pl.col("date").str.slice(0, 4).cast(pl.Int32) + pl.col("shift")
    copies = copies.select(
        "iri",
        pl.when(pl.col("kind") == "sequel").then(label + pl.col("sequel"))
        .when(pl.col("kind") == "subtitle").then(label + pl.lit(": ") + pl.col("subtitle"))
        .when(pl.col("kind") == "typo").then(typo)
        .otherwise(label).alias("label"),
        (year.clip(1870, 2030).cast(pl.String).str.zfill(4) + pl.col("date").str.slice(4)).alias("date"),
        (pl.lit("tt9") + pl.int_range(pl.len()).cast(pl.String).str.zfill(8)).alias("imdb"),
    )
    # Names and years as the matchers see them (``core`` is the key exact_label joins on).
    tolerance = pl.int_ranges(-DEFAULT.year_tolerance, DEFAULT.year_tolerance + 1)
    real = entities_side(triples, DEFINITION, "films").names.select(
        "core", (pl.col("year").cast(pl.Int32) + tolerance).alias("year")).explode("year").unique()
    fake = item_names(copies.select(pl.col("iri").alias("item_id"), pl.col("label").alias("title"),
                                    pl.col("date").str.slice(0, 4).cast(pl.Int16).alias("year")))
    twins = fake.with_columns(pl.col("year").cast(pl.Int32)).join(real, on=["core", "year"])["id"].unique()
    planned = copies.height
    copies = copies.filter(~pl.col("iri").is_in(twins.implode()))
    like = {name: triples.filter(pl.col("predicate") == p).row(0, named=True) for name, p in
            (("label", RDFS_LABEL), ("date", RELEASED), ("imdb", IMDB))}
    added = [
        copies.filter(pl.col(name).is_not_null()).select(
            pl.col("iri").alias("subject"), pl.lit(like[name]["predicate"]).alias("predicate"),
            pl.col(name).alias("object"),
            *[pl.lit(like[name][c], triples.schema[c]).alias(c) for c in triples.columns[3:]],
        )
        for name in like
    ]
    return pl.concat([triples, *added]), planned - copies.height


# -- the sections -----------------------------------------------------------------------------------
@dataclass
class Report:
    """Markdown, printed as it comes and kept for ``--out``."""

    lines: list[str] = field(default_factory=list)

    def add(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.add("| " + " | ".join(header) + " |")
        self.add("|" + "---|" * len(header))
        for row in rows:
            self.add("| " + " | ".join(str(v) for v in row) + " |")
        self.add()


def matchers_section(report: Report, items: pl.DataFrame, triples: Path, tmp: Path) -> tuple[pl.DataFrame, float]:
    """Each matcher alone and both cascades, cold; returns the gold (exact_id links of all four) and the
    embedding matcher's texts/s."""
    runs = [in_child(Job("all four", items, triples, ALL_FOUR, cache_dir=_fresh(tmp)), None)]
    gold = runs[0].links.filter((pl.col("method") == "exact_id") & (pl.col("status") == "accepted")).select(
        "item_id", pl.lit(None, pl.String).alias("source"), pl.col("entity_iri").alias("gold_iri"))
    runs[0] = replace(runs[0], scores=evaluate(runs[0].links, gold).overall)
    runs.append(in_child(Job("no exact_id", items, triples, NO_EXACT_ID, cache_dir=_fresh(tmp)), gold))
    for matcher in ALL_FOUR:
        runs.append(in_child(Job(f"{matcher} alone", items, triples, (matcher,), cache_dir=_fresh(tmp)), gold))
    names = entities_side(pl.read_parquet(triples), DEFINITION, "films").names.height
    report.add(f"## Matchers: {items.height:,} items against {runs[0].candidates:,} candidates ({names:,} names); "
               f"gold: {gold.height:,} exact_id links\n")
    report.add("Each row is a fresh process; the embedding matcher starts cold (empty vector cache). Matcher "
               "columns: seconds inside the cascade (empty: not run, or nothing left to decide); *total*: the "
               "whole `align` call, name tables included; *CPU*: user + system seconds of the process, imports "
               "and data load included; *load*: the machine's 1-minute load average as the run ended, the "
               f"benchmark's own threads included (up to {len(os.sched_getaffinity(0))}); well above that, other "
               "work competed for the cores and the times are inflated.\n")
    report.table(
        ["configuration", *ALL_FOUR, "of which model load", "total", "CPU", "texts embedded", "RSS after imports",
         "RSS with data", "peak RSS", "accepted", "ambiguous", "precision", "recall", "load"],
        [[r.job.label, *[_s(r.timings.get(m)) for m in ALL_FOUR], _s(r.model_load_s or None),
          _s(r.timings["total"]), _s(r.cpu_s), f"{r.encoded:,}", _mb(r.rss_imports_mb), _mb(r.rss_data_mb),
          _mb(r.rss_peak_mb), f"{r.status('accepted'):,}", f"{r.status('ambiguous'):,}", *_pr(r), f"{r.load:.1f}"]
         for r in runs],
    )
    emb = runs[-1]
    if emb.encoded:
        report.add(f"Embedding alone, cold: model load {emb.model_load_s:.1f} s (torch import + weights), then "
                   f"{emb.encoded:,} texts (item and entity names) embedded in {emb.encode_s:.1f} s = "
                   f"{emb.rate():,.0f} texts/s, vector cache writes included.\n")
    return gold, emb.rate()


def scorer_section(report: Report, items: pl.DataFrame, triples: Path, gold: pl.DataFrame, seed: int) -> str:
    """The fuzzy scorers, then the winner's cutoff, on a noisy catalog; returns the winner."""
    noisy_items = perturb_titles(items, noisy, seed)
    changed = core_changed(items, noisy_items)
    runs = [in_child(Job("exact_label (reference)", noisy_items, triples, ("exact_label",)), gold)]
    for scorer in SCORERS:
        runs.append(in_child(Job(scorer, noisy_items, triples, ("fuzzy",), fuzzy_scorer=scorer), gold))
    ranked = sorted(runs[1:], key=lambda r: (-_f1(r), r.job.label != DEFAULT.fuzzy_scorer))
    best = ranked[0]
    report.add(f"## Fuzzy scorer on a noisy catalog ({changed:.0%} of main titles no longer match exactly)\n")
    report.add(f"Each title got one or two edits (seed {seed}): a character typo (45%), a punctuation mark "
               "dropped or added (15%), two adjacent words swapped (15%), a leading/trailing article dropped "
               "(10%), \"&\" <-> \"and\" (15%). Normalisation absorbs most punctuation, articles and \"&\"; typos, "
               f"swaps and dropped hyphens change the key exact_label joins on ({changed:.0%} of main titles). "
               f"Matcher `fuzzy` alone (2-letter blocks), cutoff {DEFAULT.fuzzy_cutoff}; accepted at score >= "
               f"{DEFAULT.thresholds.accept} with margin >= {DEFAULT.thresholds.min_margin}.\n")
    report.table(["matcher / scorer", "matcher time", "accepted", AMBIGUOUS, "precision", "recall", "F1"],
                 [_quality_row(r, gold) for r in runs])
    report.add(f"Best F1: **{best.job.label}** ({_f1(best):.4f}), {_f1(best) - _f1(ranked[1]):+.4f} over "
               f"{ranked[1].job.label}, {_f1(best) - _f1(ranked[-1]):+.4f} over {ranked[-1].job.label}; "
               f"the default is {DEFAULT.fuzzy_scorer}.\n")
    _misses(report, best, noisy_items, triples, gold)
    cutoffs = [in_child(Job(f"{c:.2f}", noisy_items, triples, ("fuzzy",), fuzzy_scorer=best.job.label,
                            fuzzy_cutoff=c), gold) for c in (0.80, 0.85, 0.90)]
    report.add(f"Cutoff of {best.job.label}, same catalog. Pairs under the cutoff are dropped before the decision, "
               f"so the cutoff only sets which runner-ups count against the margin and which items go to review; "
               f"accepting still takes {DEFAULT.thresholds.accept}.\n")
    report.table(["fuzzy cutoff", "matcher time", "accepted", AMBIGUOUS, "precision", "recall", "F1"],
                 [_quality_row(r, gold) for r in cutoffs])
    _mistakes(report, best, gold, f"fuzzy ({best.job.label})")
    return best.job.label


def embedding_section(report: Report, items: pl.DataFrame, triples: Path, gold: pl.DataFrame, scorer: str,
                      tmp: Path, seed: int) -> None:
    """The embedding matcher's cutoff on a catalog with subtitles and word order changed."""
    reworded_items = perturb_titles(items, reworded, seed)
    changed = core_changed(items, reworded_items)
    cache = _fresh(tmp)
    runs = [
        in_child(Job("exact_label", reworded_items, triples, ("exact_label",)), gold),
        in_child(Job(f"fuzzy ({scorer}, {DEFAULT.fuzzy_cutoff})", reworded_items, triples, ("fuzzy",),
                     fuzzy_scorer=scorer), gold),
    ]
    for c in (0.80, 0.85, 0.90):
        runs.append(in_child(Job(f"embedding, cutoff {c:.2f}", reworded_items, triples, ("embedding",),
                                 embedding_cutoff=c, cache_dir=cache), gold))
    runs.append(in_child(Job(f"cascade exact_label, fuzzy ({scorer}), embedding", reworded_items, triples, NO_EXACT_ID,
                             fuzzy_scorer=scorer, cache_dir=cache), gold))
    report.add(f"## Embedding cutoff on a reworded catalog ({changed:.0%} of main titles no longer match exactly)\n")
    report.add(f"Each title was reworded once (seed {seed}): one with a subtitle (\"A: B\", \"A - B\") keeps only "
               "the subtitle, drops it, or swaps the two; one without a subtitle switches a trailing number between "
               "arabic and roman (\"Rocky II\" -> \"Rocky 2\"), or gains a suffix (\": The Movie\", \": Director's "
               "Cut\") or a possessive (\"John Carpenter's X\"). The first embedding run embeds every name "
               "(cold); the others reuse its vector cache.\n")
    report.table(["matcher", "matcher time", "texts embedded", "accepted", AMBIGUOUS, "precision", "recall",
                  "F1"], [_quality_row(r, gold, embedded=True) for r in runs])
    top = max(_f1(r) for r in runs[2:5])
    best = [f"{r.job.embedding_cutoff:.2f}" for r in runs[2:5] if _f1(r) == top]
    report.add(f"Best embedding cutoff on F1: **{', '.join(best)}**{' (a tie)' if len(best) > 1 else ''}; default "
               f"{DEFAULT.embedding_cutoff}. Accepting takes a score of {DEFAULT.thresholds.accept} whatever the "
               "cutoff, so a cutoff below it moves items between *ambiguous* and *unmatched* and changes F1 only "
               "through runner-ups within the margin.\n")
    _misses(report, runs[3], reworded_items, triples, gold)
    _mistakes(report, runs[3], gold, f"embedding (cutoff {DEFAULT.embedding_cutoff})")


def scaling_section(report: Report, items: pl.DataFrame, triples_path: Path, gold: pl.DataFrame, scales: list[int],
                    embedding_max_scale: int, scorer: str, encode_rate: float, tmp: Path, seed: int) -> None:
    """exact_label and fuzzy alone, and the cascade, against candidates grown by distractors."""
    triples = pl.read_parquet(triples_path)
    alone: dict[tuple[int, str], Run] = {}
    cascades: dict[int, Run] = {}
    sizes: dict[int, tuple[int, int, float]] = {}  # triples, names, seconds to generate
    dropped: dict[int, int] = {}
    scorers = dict.fromkeys((DEFAULT.fuzzy_scorer, scorer))  # the default, and the noisy catalog's winner
    alone_runs = [("exact_label", "exact_label", DEFAULT.fuzzy_scorer),
                  *[(f"fuzzy ({name})", "fuzzy", name) for name in scorers]]
    for scale in scales:
        began = time.perf_counter()
        grown, dropped[scale] = with_distractors(triples, scale, seed)
        generated = time.perf_counter() - began
        path = tmp / f"triples-x{scale}.parquet"
        grown.write_parquet(path)
        sizes[scale] = (grown.height, entities_side(grown, DEFINITION, "films").names.height, generated)
        del grown
        for label, matcher, fuzzy_scorer in alone_runs:
            alone[scale, label] = in_child(Job(f"x{scale} {label}", items, path, (matcher,),
                                               fuzzy_scorer=fuzzy_scorer), gold)
        matchers = NO_EXACT_ID if scale <= embedding_max_scale else NO_EXACT_ID[:2]
        cascades[scale] = in_child(Job(f"x{scale} cascade", items, path, matchers, cache_dir=_fresh(tmp)), gold)
        path.unlink()
    base = scales[0]
    report.add(f"## Scaling: candidates grown by distractors (x{', x'.join(map(str, scales))})\n")
    report.add("Per dated real candidate, scale - 1 distractor films with IRIs under "
               f"`{DISTRACTOR_IRI}N`, each with an rdfs:label, a P577 date in the data's format "
               "(\"1995-01-01T00:00:00Z\") and an IMDb id of its own: "
               + ", ".join(f"{k} {w:.0%}" for k, w in DISTRACTOR_KINDS.items())
               + " (remake: the same label 2-30 years apart; sequel: \"2\", \"II\", \"Part 2\", \"Returns\" ... "
               "added, 1-8 years later; subtitle: \": The Return\" ... added, 0-30 years apart; typo: one "
               f"character changed, 2-30 years apart, {TYPO_SAME_YEAR:.0%} of them the same year). Distractors "
               "that would duplicate a real candidate (the same normalised name, years within the tolerance: "
               "\"Iron Man\" + \" 3\" five years on is the real Iron Man 3) are dropped: "
               + ", ".join(f"{dropped[s]:,} at x{s}" for s in scales if s > 1) + ". Generated vectorised with "
               f"polars/numpy (seed {seed}): " + ", ".join(f"x{s} in {sizes[s][2]:.1f} s" for s in scales if s > 1)
               + ".\n")
    report.add("Each matcher alone, all items (growth: matcher time / matcher time at "
               f"x{base}; CPU: whole process):\n")
    rows = []
    for scale in scales:
        for label, matcher, _ in alone_runs:
            r, b = alone[scale, label], alone[base, label]
            rows.append([f"x{scale}", f"{r.candidates:,}", f"{sizes[scale][1]:,}", f"{sizes[scale][0]:,}", label,
                         _s(r.timings[matcher]), f"{r.timings[matcher] / b.timings[matcher]:.1f}x",
                         _s(r.timings["total"]), _s(r.cpu_s), _mb(r.rss_peak_mb), f"{r.status('accepted'):,}",
                         f"{r.status('ambiguous'):,}", *_pr(r), f"{r.load:.1f}"])
    report.table(["scale", "candidates", "names", "triples", "matcher", "matcher time", "growth", "total", "CPU",
                  "peak RSS", "accepted", "ambiguous", "precision", "recall", "load"], rows)
    if len(scorers) > 1:
        top = scales[-1]
        d, w = (alone[top, f"fuzzy ({name})"] for name in scorers)
        report.add(f"At x{top}, fuzzy with {w.job.fuzzy_scorer} took {_s(w.timings['fuzzy'])} against "
                   f"{_s(d.timings['fuzzy'])} with the default {d.job.fuzzy_scorer} "
                   f"({w.timings['fuzzy'] / d.timings['fuzzy']:.1f}x), for a recall of {_recall(w):.4f} against "
                   f"{_recall(d):.4f}.\n")
    report.add(f"The cascade exact_label -> fuzzy ({DEFAULT.fuzzy_scorer}) -> embedding (what `--no-exact-id` "
               f"runs with the defaults), embedding cold (growth: total / total at x{base}):\n")
    rows = []
    for scale in scales:
        r, b = cascades[scale], cascades[base]
        rows.append([f"x{scale}", f"{r.candidates:,}", _s(r.timings.get("exact_label")), _s(r.timings.get("fuzzy")),
                     _s(r.timings.get("embedding")) if "embedding" in r.job.matchers else "not run",
                     _s(r.model_load_s or None), f"{r.encoded:,}", f"{r.rate():,.0f}" if r.rate() else "",
                     _s(r.timings["total"]), f"{r.timings['total'] / b.timings['total']:.1f}x", _s(r.cpu_s),
                     _mb(r.rss_peak_mb), f"{r.status('accepted'):,}", f"{r.status('ambiguous'):,}", *_pr(r),
                     f"{r.load:.1f}"])
    report.table(["scale", "candidates", "exact_label", "fuzzy", "embedding", "of which model load",
                  "texts embedded", "texts/s", "total", "growth", "CPU", "peak RSS", "accepted", "ambiguous",
                  "precision", "recall", "load"], rows)
    embedded = [r for r in cascades.values() if r.encoded >= 1000]
    skipped = [s for s in scales if s > embedding_max_scale]
    if embedded and skipped:
        rates = [r.rate() for r in embedded] + ([encode_rate] if encode_rate else [])
        fast, slow = max(rates), min(rates)
        top = max(embedded, key=lambda r: r.candidates)
        per_candidate = top.encoded / top.candidates
        report.add(
            f"The embedding matcher was not run at x{', x'.join(map(str, skipped))}: it embeds every "
            "year-compatible name of the candidates still unlinked (cached on disk by text in production, cold "
            "here), and the few hundred items left after exact_label and fuzzy span nearly every year, so its "
            f"cost is the encoding. With {per_candidate:.2f} texts per candidate as at "
            f"x{top.job.label.split()[0][1:]} and {fast:,.0f} to {slow:,.0f} texts/s (the fastest and slowest cold "
            "encoding of this run), "
            + "; ".join(f"x{s} would embed about {per_candidate * cascades[s].candidates:,.0f} texts in "
                        f"{per_candidate * cascades[s].candidates / fast / 60:.0f} to "
                        f"{per_candidate * cascades[s].candidates / slow / 60:.0f} min" for s in skipped)
            + " on this machine (extrapolated, not measured).\n"
        )


# -- formatting -------------------------------------------------------------------------------------
def _quality_row(r: Run, gold: pl.DataFrame, *, embedded: bool = False) -> list[str]:
    """Matcher seconds, accepted, ambiguous (of which the best candidate is the gold one), P, R, F1."""
    seconds = sum(t for m, t in r.timings.items() if m != "total")
    review = r.links.filter(pl.col("status") == "ambiguous").join(gold, on="item_id")
    right = review.filter(pl.col("entity_iri") == pl.col("gold_iri")).height
    return [r.job.label, _s(seconds), *([f"{r.encoded:,}"] if embedded else []), f"{r.status('accepted'):,}",
            f"{r.status('ambiguous'):,} ({right:,})", *_pr(r), f"{_f1(r):.4f}"]


def _recall(r: Run) -> float:
    assert r.scores is not None
    return r.scores.recall


def _f1(r: Run) -> float:
    assert r.scores is not None
    return r.scores.f1


def _misses(report: Report, run: Run, items: pl.DataFrame, triples: Path, gold: pl.DataFrame, n: int = 8) -> None:
    """Why gold items were missed: left for review, unmatched, or out of their gold entity's fuzzy block."""
    missed = evaluate(run.links, gold).missed
    if missed.is_empty():
        return
    block = pl.col("core").str.slice(0, 2)
    item_blocks = item_names(items).select(pl.col("id").alias("item_id"), block.alias("block"))
    entity_blocks = entities_side(pl.read_parquet(triples), DEFINITION, "films").names.select(
        pl.col("id").alias("gold_iri"), block.alias("block"))
    same_block = (missed.select("item_id", "gold_iri").join(item_blocks, on="item_id")
                  .join(entity_blocks, on=["gold_iri", "block"]).select("item_id").unique())
    statuses = dict(missed.group_by("status").len().iter_rows())
    blocked = (f"; {missed.height - same_block.height:,} no longer share the 2-letter block of any name of their "
               "gold entity (fuzzy never compares those)") if "fuzzy" in run.job.matchers else ""
    report.add(f"{run.job.label} missed {missed.height:,} gold items: {statuses.get('ambiguous', 0):,} left for "
               f"review (ambiguous), {statuses.get('unmatched', 0):,} unmatched{blocked}. Some:\n")
    report.table(["catalog name", "status", "best candidate", "score", "margin"],
                 [[r["item_name"], r["status"], r["entity_name"] or "", f"{r['score'] or 0:.3f}",
                   f"{r['margin'] or 0:.3f}"]
                  for r in missed.sample(min(n, missed.height), seed=0).iter_rows(named=True)])


def _mistakes(report: Report, run: Run, gold: pl.DataFrame, what: str, n: int = 8) -> None:
    """A few wrong accepted links, for the notes."""
    wrong = evaluate(run.links, gold).wrong
    if wrong.is_empty():
        report.add(f"No wrong accepted links for {what}.\n")
        return
    report.add(f"Wrong accepted links of {what} ({wrong.height:,}; first {min(n, wrong.height)}):\n")
    report.table(["catalog name", "linked to", "score", "margin"],
                 [[r["item_name"], r["entity_name"], f"{r['score']:.3f}", f"{r['margin']:.3f}"]
                  for r in wrong.head(n).iter_rows(named=True)])


def _pr(r: Run) -> list[str]:
    return [f"{r.scores.precision:.4f}", f"{r.scores.recall:.4f}"] if r.scores else ["", ""]


def _s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f} s"


def _mb(mb: float) -> str:
    return f"{mb:,.0f} MB"


def _fresh(tmp: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp, prefix="vectors-"))


def machine() -> str:
    import faiss
    import rapidfuzz

    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return (f"machine: {platform.node()}, {platform.platform()}, {cpu}, {len(os.sched_getaffinity(0))} cores "
            f"usable, {ram:.1f} GiB RAM; Python {platform.python_version()}, polars {pl.__version__}, "
            f"rapidfuzz {rapidfuzz.__version__}, faiss {faiss.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,500 items, scales 1,2")
    parser.add_argument("--scales", default="1,10,100", help="candidate set multipliers (default 1,10,100)")
    parser.add_argument("--embedding-max-scale", type=int, default=10,
                        help="largest scale the cascade runs the embedding matcher at (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "wikidata-movielens-small").is_dir():
        print(f"{SHARED_DATA}/wikidata-movielens-small not found", file=sys.stderr)
        return 2
    scales = [1, 2] if args.quick else sorted({int(s) for s in args.scales.split(",")})
    began = time.perf_counter()
    report = Report()
    report.add(machine() + f"; load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        triples_path = tmp / "triples.parquet"
        pull_s = pull_candidates(triples_path, tmp / "mirror")
        items = load_movielens(SHARED_DATA / "movielens-latest-small", interactions=False).items
        if args.quick:
            items, triples = subsample(items, pl.read_parquet(triples_path), 1500, args.seed)
            triples.write_parquet(triples_path)
        report.add(f"catalog: {items.height:,} items{' (quick: a sample)' if args.quick else ''}; candidate pull "
                   f"from a local oxigraph mirror: {pull_s:.1f} s\n")
        gold, encode_rate = matchers_section(report, items, triples_path, tmp)
        scorer = scorer_section(report, items, triples_path, gold, args.seed)
        embedding_section(report, items, triples_path, gold, scorer, tmp, args.seed)
        scaling_section(report, items, triples_path, gold, scales, args.embedding_max_scale, scorer, encode_rate,
                        tmp, args.seed)
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    report.add(f"Benchmark wall time: {(time.perf_counter() - began) / 60:.1f} min; load average at the end {load:.2f}"
               + (f" (over {cores}: other processes shared the cores)." if load > cores else "."))
    if args.out:
        args.out.write_text("\n".join(report.lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
