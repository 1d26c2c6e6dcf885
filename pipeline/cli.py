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
    from kg_build.catalog import CatalogError
    from kg_build.query import QueryError
    from kg_build.sources import SourceDefinitionError
    from kg_build.sparql import SparqlError
    from pipeline.lake import LakeError
    from pipeline.mirror import MirrorError
    from pipeline.settings import ConfigError
    from pipeline.steps.extract import ExtractError

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
        UsageError,
    ) as exc:
        print(f"kgrec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kgrec: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
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

    result = STEPS[args.step](_settings(args), _run_date(args))
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
