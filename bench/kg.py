"""Benchmark: building and validating the KG of ml-latest-small + the Wikidata mirror, and of 10x that.

    .venv/bin/python bench/kg.py [--home DIR] [--scales 1,10] [--out FILE]

1. **Upstream** (not timed against the target): the ``movielens`` profile's ``ingest``, ``extract``
   and ``align`` for one run date into ``--home`` (a temporary folder by default), against local
   oxigraph mirrors of ../shared/data. An existing ``--home`` lake with those partitions is reused.
2. **Scales**: scale 1 is that lake; scale k replicates it k times (items, users, links and every
   IRI suffixed ``~k``: k disjoint copies of the KG, so every count grows k-fold).
3. For each scale, in a fresh process (``spawn``): ``build`` then ``validate`` (the first publish:
   no drift suite), each timed; the peak RSS of the process (``VmHWM``), its RSS after the imports,
   and the in-memory size of the inputs read (raw facts, catalog, interactions, links as polars
   frames) and of the KG tables.

Target (issue 5): the scale-1 build and validation together under 20 s on 2 cores, memory well
under three times the data's in-memory size. Prints a Markdown table (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY = date(2026, 11, 21)
KEY = {"run_date": DAY.isoformat()}
SOURCES = ("wikidata", "dbpedia")


def vm_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def upstream(home: Path) -> float:
    """The movielens profile's ingest, extract and align into ``home``; seconds taken (0 when reused)."""
    from pipeline import mirror
    from pipeline.lake import Lake
    from pipeline.settings import load_settings
    from pipeline.steps.align import align
    from pipeline.steps.extract import extract
    from pipeline.steps.ingest import ingest

    if KEY in Lake(home / "lake").partitions("alignment"):
        return 0.0
    settings = load_settings("movielens", environ={"KGREC_HOME": str(home)})
    began = time.monotonic()
    specs = mirror.specs_from_settings(settings)
    for spec in specs:
        mirror.start(spec, settings.home)
    try:
        ingest(settings, DAY)
        extract(settings, DAY)
        align(settings, DAY)
    finally:
        for spec in specs:
            mirror.stop(settings.home, spec.name)
    return time.monotonic() - began


def replicate(source: Path, target: Path, scale: int) -> None:
    """``target``'s lake holds ``scale`` disjoint copies of ``source``'s upstream partitions."""
    from pipeline.lake import Lake

    src, dst = Lake(source / "lake"), Lake(target / "lake")

    def copies(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        return pl.concat([frame, *(frame.with_columns(pl.col(c) + f"~{k}" for c in columns) for k in range(1, scale))])

    iri = pl.when(pl.col("object_kind") == "iri")
    tables = {
        ("catalog", "items"): lambda f: copies(f, ["item_id"]),
        ("interactions", "interactions"): lambda f: copies(f, ["user_id", "item_id"]),
        ("alignment", "links"): lambda f: copies(f, ["item_id", "entity_iri"]),
    }
    for (dataset, table), change in tables.items():
        manifest = src.manifest(dataset, KEY)
        dst.write(dataset, KEY, {table: change(src.read(dataset, KEY, table))}, config_hash=manifest.config_hash,
                  extra=manifest.extra)
    for source_name in SOURCES:
        key = {"source": source_name, **KEY}
        manifest = src.manifest("raw_triples", key)
        facts = src.read("raw_triples", key, "facts")
        out = [facts]
        for k in range(1, scale):
            out.append(facts.with_columns(
                (pl.col("subject") + f"~{k}").alias("subject"),
                iri.then(pl.col("object") + f"~{k}").otherwise(pl.col("object")).alias("object"),
            ))
        dst.write("raw_triples", key, {"facts": pl.concat(out)}, config_hash=manifest.config_hash,
                  extra=manifest.extra)


def measure(home: str) -> dict[str, float]:
    """Build and validate in this (fresh) process."""
    import great_expectations  # noqa: F401 - imported before the baseline, as any nightly worker has it

    from pipeline.lake import Lake
    from pipeline.settings import load_settings
    from pipeline.steps.build import build
    from pipeline.steps.validate import validate

    settings = load_settings("movielens", environ={"KGREC_HOME": home})
    lake = Lake(settings.lake_root)
    baseline = vm_mb("VmRSS")
    began = time.monotonic()
    built = build(settings, DAY)
    build_s = time.monotonic() - began
    began = time.monotonic()
    checked = validate(settings, DAY)
    validate_s = time.monotonic() - began
    peak = vm_mb("VmHWM")
    inputs = sum(lake.read(d, KEY, t).estimated_size() for d, t in
                 (("catalog", "items"), ("interactions", "interactions"), ("alignment", "links")))
    inputs += sum(lake.read("raw_triples", {"source": s, **KEY}, "facts").estimated_size() for s in SOURCES)
    kg_bytes = sum(lake.read("kg", {"version": str(built.version)}, t).estimated_size()
                   for t in ("entities", "relations", "triples", "item_entity", "users", "interactions", "splits"))
    facts = sum(lake.manifest("raw_triples", {"source": s, **KEY}).files["facts"].rows for s in SOURCES)
    return {"build_s": build_s, "validate_s": validate_s, "peak_mb": peak, "baseline_mb": baseline,
            "inputs_mb": inputs / 2**20, "kg_mb": kg_bytes / 2**20, "facts": facts,
            "triples": built.counts["triples"], "entities": built.counts["entities"],
            "items": built.counts["items"], "interactions": built.counts["interactions"],
            "checks": checked.checks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="reuse or fill this home (default: a temporary folder)")
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",")]
    with tempfile.TemporaryDirectory(prefix="kgrec-bench-kg-") as tmp:
        base = args.home or Path(tmp) / "base"
        upstream_s = upstream(base)
        rows = []
        ctx = multiprocessing.get_context("spawn")
        for scale in scales:
            home = Path(tmp) / f"x{scale}"
            replicate(base, home, scale)
            with ctx.Pool(1) as pool:
                r = pool.apply(measure, (str(home),))
            shutil.rmtree(home)
            rows.append((scale, r))
            print(f"scale {scale}: {r}", flush=True)
    lines = [
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"upstream (ingest, extract, align) {upstream_s:.1f} s (0 = reused).",
        "",
        "| scale | raw facts | triples | entities | items | interactions | build | validate | build + validate "
        "| peak RSS | RSS after imports | inputs in memory | KG in memory | peak − imports vs inputs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scale, r in rows:
        growth = r["peak_mb"] - r["baseline_mb"]
        lines.append(
            f"| {scale}x | {r['facts']:,.0f} | {r['triples']:,.0f} | {r['entities']:,.0f} | {r['items']:,.0f} "
            f"| {r['interactions']:,.0f} | {r['build_s']:.1f} s | {r['validate_s']:.1f} s "
            f"| **{r['build_s'] + r['validate_s']:.1f} s** | {r['peak_mb']:,.0f} MB | {r['baseline_mb']:,.0f} MB "
            f"| {r['inputs_mb']:,.0f} MB | {r['kg_mb']:,.0f} MB | {growth / r['inputs_mb']:.1f}x |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
