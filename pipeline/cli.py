"""The ``kgrec`` command line: the same step functions that Airflow calls, plus mirror and lake tools."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from pipeline import __version__

log = logging.getLogger("kgrec")


def main(argv: Sequence[str] | None = None) -> int:
    from kg_build.align.aligner import AlignError
    from kg_build.align.evaluate import GoldError
    from kg_build.align.manual import OverridesError
    from kg_build.benchmarks import BenchmarkIncomplete
    from kg_build.catalog import CatalogError
    from kg_build.query import QueryError
    from kg_build.sources import SourceDefinitionError
    from kg_build.sparql import SparqlError
    from kg_build.tables import KGError
    from kg_build.vocab import VocabularyError
    from pipeline.bench.recbole_peer import PeerError
    from pipeline.lake import LakeError
    from pipeline.mirror import MirrorError
    from pipeline.model_store import ModelStoreError
    from pipeline.scoring import ScoringError
    from pipeline.settings import ConfigError
    from pipeline.steps.extract import ExtractError
    from pipeline.steps.publish import PublishRefused
    from pipeline.steps.score import ScoreError
    from pipeline.steps.train import TrainError
    from pipeline.steps.validate import ValidationFailed
    from pipeline.warehouse import WarehouseError

    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"kgrec: {exc}", file=sys.stderr)
        return 2
    except (
        MirrorError, CatalogError, LakeError, ExtractError, SparqlError, QueryError, SourceDefinitionError,
        UsageError, AlignError, OverridesError, GoldError, ValidationFailed, PublishRefused, VocabularyError,
        KGError, BenchmarkIncomplete, TrainError, ModelStoreError, PeerError, ScoreError, ScoringError,
        WarehouseError,
    ) as exc:
        print(f"kgrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from pipeline.cli_models import add_model_commands
    from pipeline.steps import STEPS

    parser = argparse.ArgumentParser(
        prog="kgrec",
        description="Knowledge-graph recommendations for a catalog: build the KG, train, score.",
    )
    parser.add_argument("--version", action="version", version=f"kgrec {__version__}")
    parser.add_argument("-p", "--profile", help="built-in profile (sample, movielens, live) or a .toml path; "
                        "default $KGREC_PROFILE or sample")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    noise.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run every pipeline step in order for one date")
    _date_arg(run)
    run.add_argument("--with-mirrors", action="store_true",
                     help="start the profile's local SPARQL mirrors first and stop them at the end")
    run.set_defaults(handler=_cmd_run)

    for name, step in STEPS.items():
        doc = (sys.modules[step.__module__].__doc__ or "").strip().splitlines()[0]
        step_parser = sub.add_parser(name, help=doc.split(": ", 1)[-1].rstrip("."))
        _date_arg(step_parser)
        step_parser.set_defaults(handler=_cmd_step, step=name)
        if name == "extract":
            _extract_args(step_parser)
        if name == "align":
            _align_args(step_parser)
        if name == "publish":
            step_parser.add_argument("--force", action="store_true", help="publish the date's version even when "
                                     "it is older than the published one (a rollback); never an unvalidated one")

    evaluate = sub.add_parser("align-eval", help="grade alignment links against gold links",
                              description="Precision, recall and F1 of the accepted links, overall and per "
                              "method, and the wrong links. Only items with a gold entity are graded.")
    evaluate.add_argument("--links", type=Path, required=True, help="links.parquet to grade")
    evaluate.add_argument("--gold", type=Path, required=True,
                          help="gold CSV (item_id,entity_iri[,source]) or a links.parquet whose --gold-method "
                          "links are gold")
    evaluate.add_argument("--gold-method", default="exact_id", help="with a links.parquet gold (default exact_id)")
    evaluate.add_argument("--show", type=int, default=20, help="wrong and missed links to print (default 20)")
    evaluate.set_defaults(handler=_cmd_align_eval)

    export = sub.add_parser("export", help="write a KG in another tool's format (RecBole, KGAT)",
                            description="Writes the published KG (or --version N, or a benchmark set of "
                            "../shared/data with --benchmark) as RecBole atomic files (.inter, .kg, .link, with "
                            "the train/valid/test split) or in the KGAT text format (train.txt, test.txt, "
                            "kg_final.txt). The folder is replaced only when the export is complete.")
    export.add_argument("format", choices=["recbole", "kgat"])
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
    export.add_argument("--name", default="kgrec", help="RecBole dataset name (default kgrec)")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="KG version (default: the published one)")
    which.add_argument("--benchmark", help="kgcn-music, kgat-last-fm or kgat-amazon-book")
    export.add_argument("--path", type=Path, metavar="DIR",
                        help="the benchmark's folder (default ../shared/data/NAME beside the project)")
    export.set_defaults(handler=_cmd_export)

    add_model_commands(sub)

    mirror = sub.add_parser("mirror", help="local SPARQL mirrors (oxigraph on 127.0.0.1)")
    msub = mirror.add_subparsers(title="actions", metavar="ACTION", required=True)
    for action, text in (
        ("serve", "serve one mirror in the foreground (Ctrl-C stops it)"),
        ("start", "start mirrors in the background"),
        ("stop", "stop mirrors started by kgrec"),
        ("status", "show mirrors started by kgrec"),
    ):
        p = msub.add_parser(action, help=text, description=text + ". Without --port, NAMEs are the "
                            "profile's mirrors (default: all of them); with --port, the arguments are "
                            "N-Triples files (.nt, .nt.gz).")
        p.add_argument("args", nargs="*", metavar="NAME|FILE")
        if action in ("serve", "start"):
            p.add_argument("--port", type=int, help="serve these FILEs on 127.0.0.1:PORT")
            p.add_argument("--name", help="name for an ad hoc mirror (default: port-PORT)")
        if action == "stop":
            p.add_argument("--all", action="store_true", help="stop every mirror kgrec started here")
        p.set_defaults(handler=_cmd_mirror, action=action)

    config = sub.add_parser("config", help="print the effective settings (secrets masked)")
    config.set_defaults(handler=_cmd_config)

    lake = sub.add_parser("lake", help="list the lake's datasets, partitions and row counts")
    lake.add_argument("dataset", nargs="*")
    lake.set_defaults(handler=_cmd_lake)
    return parser


def _extract_args(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Without --source: the pipeline step (every configured source, candidates then facts as configured). "
        "With --source: one source, standalone: the candidate pull, or with --entities the fact pull for "
        "the listed IRIs; the other table of the partition is kept."
    )
    parser.add_argument("--source", help="a configured source or a defined one (wikidata, dbpedia)")
    parser.add_argument("--domain", help="a domain of the source definitions (default extract.domain: films)")
    parser.add_argument("--endpoint", help="SPARQL endpoint URL (default: the source's, from the profile)")
    parser.add_argument("--entities", type=Path, metavar="FILE", help="pull facts for these IRIs (one per line)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="lake root to write to (default $KGREC_HOME/lake)")
    parser.set_defaults(handler=_cmd_extract)


def _align_args(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Without --catalog: the pipeline step (the run date's catalog against every configured source's "
        "candidates in the lake). With --catalog: standalone, a catalog file against candidates pulled now "
        "from --endpoint, written to --out."
    )
    parser.add_argument("--catalog", type=Path, metavar="PATH", help="the catalog file (movies.csv, movies.dat, "
                        "artists.dat, a CSV with item_id,title[,year,imdb_id])")
    parser.add_argument("--catalog-format", choices=["sample", "movielens", "movielens-1m", "hetrec-artists", "csv"])
    parser.add_argument("--source", help="wikidata or dbpedia (or a source of the profile)")
    parser.add_argument("--domain", help="films or music-artists (default extract.domain)")
    parser.add_argument("--endpoint", help="SPARQL endpoint URL (default: the source's, from the profile)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="links.parquet to write (review, report and "
                        "histogram beside it)")
    parser.add_argument("--no-exact-id", action="store_true", help="switch the external-id matcher off")
    parser.add_argument("--overrides", type=Path, metavar="CSV", help="overrides file (item_id,entity_iri,note)")
    parser.set_defaults(handler=_cmd_align)


def _date_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=_iso_date, default=None, metavar="YYYY-MM-DD",
                        help="run date (the partition to write); default today (UTC)")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _settings(args: argparse.Namespace):
    from pipeline.settings import load_settings

    return load_settings(args.profile)


def _run_date(args: argparse.Namespace) -> date:
    return args.date or datetime.now(UTC).date()


# -- commands ------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline import mirror
    from pipeline.steps import STEPS

    settings = _settings(args)
    run_date = _run_date(args)
    began = time.monotonic()
    log.info("kgrec run: profile %s, run date %s, home %s", settings.profile, run_date, settings.home)
    started: list[str] = []
    summaries: list[str] = []
    try:
        if args.with_mirrors:
            for spec in mirror.specs_from_settings(settings):
                state, did_start = mirror.start(spec, settings.home)
                if did_start:
                    started.append(spec.name)
                n = mirror.count_triples(spec.endpoint)
                summaries.append(f"mirror {spec.name}: {n:,} triples at {spec.endpoint}"
                                 + ("" if did_start else " (already running)"))
                log.info(summaries[-1])
        for name, step in STEPS.items():
            result = step(settings, run_date)
            summaries.append(result.summary() if hasattr(result, "summary") else f"{name}: {result}")
    finally:
        for name in started:
            log.info(mirror.stop(settings.home, name))
    print(f"\nkgrec run {run_date} ({settings.profile}) finished in {time.monotonic() - began:.1f}s")
    for line in summaries:
        print(f"  {line}")
    print(f"  lake: {settings.lake_root}  (kgrec lake)")
    return 0


def _cmd_step(args: argparse.Namespace) -> int:
    from pipeline.steps import STEPS

    extra = {"force": args.force} if args.step == "publish" else {}
    result = STEPS[args.step](_settings(args), _run_date(args), **extra)
    print(result.summary() if hasattr(result, "summary") else result)
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from kg_build.extract import read_entity_file
    from pipeline.steps.extract import extract, extract_source

    settings = _settings(args)
    run_date = _run_date(args)
    if args.source is None:
        if any((args.domain, args.endpoint, args.entities, args.out)):
            raise UsageError("--domain, --endpoint, --entities and --out need --source")
        print(extract(settings, run_date).summary())
        return 0
    try:
        entities = read_entity_file(args.entities) if args.entities else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = extract_source(
        settings, run_date, args.source, domain=args.domain, endpoint=args.endpoint, entities=entities,
        candidates=entities is None, facts=entities is not None, lake_root=args.out,
    )
    print(result.line())
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from pipeline.steps.align import align, align_catalog

    settings = _settings(args)
    standalone = (args.catalog_format, args.source, args.endpoint, args.out, args.overrides, args.no_exact_id)
    if args.catalog is None:
        if any(standalone):
            raise UsageError("--catalog-format, --source, --endpoint, --out, --overrides and --no-exact-id "
                             "need --catalog")
        print(align(settings, _run_date(args)).summary())
        return 0
    missing = [flag for flag, value in (("--catalog-format", args.catalog_format), ("--source", args.source),
                                        ("--out", args.out)) if value is None]
    if missing:
        raise UsageError(f"--catalog needs {', '.join(missing)}")
    result = align_catalog(
        settings, catalog=args.catalog, catalog_format=args.catalog_format, source=args.source,
        domain=args.domain or settings.extract.domain, endpoint=args.endpoint, out=args.out,
        exact_id=not args.no_exact_id, overrides=args.overrides,
    )
    print(result.summary())
    return 0


def _cmd_align_eval(args: argparse.Namespace) -> int:
    import polars as pl

    from kg_build.align.evaluate import evaluate, read_gold

    if not args.links.is_file():
        raise UsageError(f"links file {args.links} does not exist")
    result = evaluate(pl.read_parquet(args.links), read_gold(args.gold, method=args.gold_method))
    print(result.table())
    with pl.Config(tbl_rows=args.show, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        for name, frame in (("wrong links", result.wrong), ("missed gold items", result.missed)):
            if frame.height:
                print(f"\n{name} ({frame.height:,}, first {min(args.show, frame.height)}):")
                print(frame.head(args.show))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from kg_build.export import write_kgat, write_recbole

    kg, what = _kg_to_export(args)
    if args.format == "recbole":
        files = write_recbole(kg, args.out, args.name)
    else:
        files = write_kgat(kg, args.out)
    counts = kg.counts()
    print(f"export {args.format}: {what}: {counts['triples']:,} triples, {counts['items']:,} items, "
          f"{counts['interactions']:,} interactions -> {len(files)} files in {args.out}")
    return 0


def _kg_to_export(args: argparse.Namespace):  # noqa: ANN202 - (KG, description)
    from kg_build.benchmarks import BENCHMARKS
    from kg_build.splits import SplitConfig
    from pipeline import kg_store
    from pipeline.lake import Lake
    from pipeline.settings import PROJECT_ROOT

    settings = _settings(args)
    if args.benchmark:
        if args.benchmark not in BENCHMARKS:
            raise UsageError(f"unknown benchmark {args.benchmark!r}: choose one of {', '.join(BENCHMARKS)}")
        folder = args.path or PROJECT_ROOT.parent / "shared" / "data" / args.benchmark
        if not folder.is_dir():
            raise UsageError(f"benchmark folder {folder} does not exist: give it with --path")
        k = settings.kg
        split = SplitConfig(valid=k.valid, test=k.test, cold_items=k.cold_items, temporal=False, seed=settings.seed)
        return BENCHMARKS[args.benchmark](folder, split), f"benchmark {args.benchmark} ({folder})"
    if args.path:
        raise UsageError("--path needs --benchmark")
    lake = Lake(settings.lake_root)
    version = args.version if args.version is not None else kg_store.published(lake)
    if version is None:
        raise UsageError("no KG is published yet: run `kgrec build`, `validate` and `publish`, or pass --version")
    if version not in kg_store.versions(lake):
        raise UsageError(f"KG version {version} does not exist (versions: {kg_store.versions(lake)})")
    return kg_store.read(lake, version), f"KG version {version}"


class UsageError(ValueError):
    """Bad command-line input (an entity file with invalid IRIs, a flag without the one it needs)."""


def _cmd_mirror(args: argparse.Namespace) -> int:
    from pipeline import mirror

    settings = _settings(args)
    home = settings.home
    port = getattr(args, "port", None)
    if port is not None:
        if not args.args:
            raise mirror.MirrorError("--port needs the N-Triples FILEs to serve")
        specs = [mirror.MirrorSpec(args.name or f"port-{port}", port, mirror.expand_files(args.args, Path.cwd()))]
    elif args.action in ("serve", "start"):
        specs = mirror.specs_from_settings(settings, args.args)
    else:
        specs = []

    if args.action == "serve":
        if len(specs) != 1:
            names = ", ".join(s.name for s in specs)
            raise mirror.MirrorError(f"serve runs one mirror in the foreground: name one of {names}")
        mirror.serve(specs[0], home)  # does not return
        return 0
    if args.action == "start":
        for spec in specs:
            state, did_start = mirror.start(spec, home)
            print(state.describe() + ("" if did_start else " (already running)"))
        return 0
    if args.action == "stop":
        if args.all:
            names = [s.name for s in mirror.all_statuses(home)]
        else:
            names = args.args or [s.name for s in mirror.specs_from_settings(settings)]
        for name in names:
            print(mirror.stop(home, name))
        return 0
    states = [mirror.status(home, n) for n in args.args] if args.args else mirror.all_statuses(home)
    for state in states:
        print(state.describe())
    if not states:
        print(f"no mirrors started by kgrec under {home}")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    print(json.dumps(_settings(args).redacted(), indent=2))
    return 0


def _cmd_lake(args: argparse.Namespace) -> int:
    from pipeline.lake import Lake, partition_name

    settings = _settings(args)
    lake = Lake(settings.lake_root)
    root = settings.lake_root
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
    datasets = args.dataset or found
    if not datasets:
        print(f"the lake at {root} is empty: run `kgrec run`")
    for dataset in datasets:
        current = lake.current(dataset)
        print(dataset)
        for key in lake.partitions(dataset):
            manifest = lake.manifest(dataset, key)
            counts = ", ".join(f"{name} {rows:,}" for name, rows in manifest.row_counts.items())
            mark = "  <- _CURRENT" if key == current else ""
            print(f"  {partition_name(key)}: {counts} ({manifest.created_at}){mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
