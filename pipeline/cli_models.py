"""``kgrec train``, ``evaluate``, ``score``, ``warehouse`` and ``bench models``: the model commands of the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cli import (  # cli imports this module inside _parser()
    UsageError,
    _date_arg,
    _run_date,
    _settings,
)


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train models on the published KG (new model versions)",
                           description="Trains each model (default: the profile's [train] models) on the "
                           "published KG to early stopping and stores <home>/models/<model>/version=N/ "
                           "(model.pt, config.json, metrics.jsonl, eval.json), then promotes each new version "
                           "that passes the regression gate (kgrec promote).")
    _date_arg(train)
    train.add_argument("--model", action="append", dest="models", metavar="NAME",
                       help="a model to train (repeatable; default: the profile's train.models)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the profile's device (auto)")
    train.add_argument("--epochs", type=int, help="cap on epochs")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                       help="hyperparameter override, e.g. hops=2 or train.lr=0.001 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue the model's interrupted run")
    train.add_argument("--no-promote", action="store_true", help="keep the promoted versions as they are")
    train.set_defaults(handler=_cmd_train)

    promote = sub.add_parser("promote", help="make a model version the one scoring uses, unless it regresses",
                             description="Compares the version's test metric (eval.json) with the promoted "
                             "version's (train.gate_metric, default recall@20 / AUC / MRR by protocol) and promotes "
                             "it unless it is more than train.tolerance below; the decision goes to its gate.json.")
    promote.add_argument("--model", required=True, metavar="NAME")
    promote.add_argument("--version", type=int, help="model version (default: the latest)")
    promote.add_argument("--force", action="store_true", help="promote even when it regresses (a rollback)")
    promote.set_defaults(handler=_cmd_promote)

    evaluate = sub.add_parser("evaluate", help="evaluate a stored model version on its KG version",
                              description="Test and cold-start metrics of a stored model (default: its latest "
                              "version), written to its eval.json and printed as JSON.")
    evaluate.add_argument("--model", required=True, metavar="NAME")
    evaluate.add_argument("--version", type=int, help="model version (default: the latest)")
    evaluate.set_defaults(handler=_cmd_evaluate)

    score = sub.add_parser("score", help="score users with a trained model into the warehouse (with explanations)",
                           description="Ranks every user's unseen items with a trained model (default: the profile's "
                           "score.model, else the first of train.models; its promoted version, else the latest) on "
                           "the published KG, explains each recommendation with the model's best KG paths, and "
                           "replaces the run date's partition of the warehouse tables in one transaction.")
    _date_arg(score)
    score.add_argument("--model", metavar="NAME", help="model to score with")
    score.add_argument("--version", type=int,
                       help="model version (default: the promoted one, else the latest)")
    score.add_argument("--user", action="append", dest="users", metavar="USER_ID",
                       help="score only this user (repeatable); the partition keeps the other users' lists")
    score.add_argument("--users-file", type=Path, metavar="FILE", help="score only the user ids in FILE (one a line)")
    score.add_argument("-k", type=int, help="recommendations per user (default: score.k, 20)")
    score.add_argument("--paths", type=int, help="explanation paths per item (default: score.paths, 3; 0: none)")
    score.add_argument("--export", action=argparse.BooleanOptionalAction, default=None,
                       help="also write the lists as Parquet to the lake (default: score.export)")
    score.set_defaults(handler=_cmd_score)

    warehouse = sub.add_parser("warehouse", help="the warehouse: create its tables and views, run its checks")
    wsub = warehouse.add_subparsers(title="actions", metavar="ACTION", required=True)
    wsub.add_parser("init", help="create the tables and views of sql/ (idempotent)").set_defaults(
        handler=_cmd_warehouse, action="init")
    wsub.add_parser("check", help="run sql/checks; exit 1 and print the violating rows if any returns rows"
                    ).set_defaults(handler=_cmd_warehouse, action="check")

    bench = sub.add_parser("bench", help="benchmarks (models: ours side by side with RecBole)")
    bsub = bench.add_subparsers(title="benchmarks", metavar="WHAT", required=True)
    models = bsub.add_parser("models", help="train and evaluate models on a benchmark dataset",
                             description="Trains each model to early stopping and prints a Markdown table "
                             "(metrics, seconds per training epoch, seconds per evaluation, peak memory); with "
                             "--peer recbole, RecBole 1.2.1 runs on the identical split in its own virtual "
                             "environment (created under <home>/peer on first use).")
    models.add_argument("--dataset", action="append", required=True, choices=["kgcn-music", "movielens-small"])
    models.add_argument("--protocol", required=True, choices=["ctr", "ranking"])
    models.add_argument("--models", required=True,
                        help="comma-separated model names; name:key=value[:key=value] overrides hyperparameters "
                             "for an ablation row (ours only)")
    models.add_argument("--peer", choices=["recbole"])
    models.add_argument("--json", type=Path, metavar="OUT.json", help="write the rows as JSON")
    models.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the table to a file too")
    models.add_argument("--epochs", type=int, help="cap on epochs (both implementations)")
    models.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="runs per model and implementation, seeded with the configured seed and the N-1 after "
                        "it; the table shows mean ± std (default 1)")
    models.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    models.add_argument("--shared", type=Path, default=Path("../shared"), help="the shared data folder")
    models.set_defaults(handler=_cmd_bench_models)

    from pipeline.bench.gpu import add_arguments

    gpu = bsub.add_parser("gpu", help="every model on the CPU and on CUDA: kgcn-music and the amazon-book scale",
                          description="Appends one JSON object per measurement to --json (sections: "
                          "env, music-speed, music-parity, amazon-speed, amazon-score, ddp; see pipeline/bench/gpu.py); "
                          "--report prints the README's tables from such files instead.")
    add_arguments(gpu)
    gpu.set_defaults(handler=_cmd_bench_gpu)


def _cmd_train(args: argparse.Namespace) -> int:
    from models import distributed
    from pipeline.steps.promote import promote
    from pipeline.steps.train import train

    settings = _settings(args)
    folders = train(settings, _run_date(args), models=args.models,
                    overrides=_assignments(args.assignments), epochs=args.epochs, device=args.device,
                    resume=args.resume)
    main = distributed.context().main  # under torchrun every rank gets here; rank 0 alone prints and promotes
    for folder in folders if main else []:
        print(folder)
        if not args.no_promote:
            print("  " + promote(settings, folder.parent.name, int(folder.name.removeprefix("version="))).summary())
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from pipeline.steps.promote import promote

    result = promote(_settings(args), args.model, args.version, force=args.force)
    print(result.summary())
    return 0 if result.promoted else 1


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.steps.train import evaluate_model

    print(json.dumps(evaluate_model(_settings(args), args.model, args.version), indent=2))
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from pipeline.steps.score import score

    users = list(args.users or [])
    if args.users_file:
        if not args.users_file.is_file():
            raise UsageError(f"--users-file: {args.users_file} does not exist")
        users += [line.strip() for line in args.users_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.k is not None and args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    result = score(_settings(args), _run_date(args), model=args.model, version=args.version,
                   users=users or None, k=args.k, paths=args.paths, export=args.export)
    print(result.summary())
    return 0


def _cmd_warehouse(args: argparse.Namespace) -> int:
    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(_settings(args).warehouse.url)
    try:
        warehouse.ensure_schema()
        if args.action == "init":
            print(f"warehouse {warehouse.safe_url}: tables and views are in place")
            return 0
        violations = warehouse.check()
    finally:
        warehouse.dispose()
    for name, rows in violations.items():
        print(f"FAIL {name}: {rows}")
    print(f"warehouse {warehouse.safe_url}: {len(violations)} check(s) failed" if violations else
          f"warehouse {warehouse.safe_url}: every check passed")
    return 1 if violations else 0


def _cmd_bench_models(args: argparse.Namespace) -> int:
    from models import MODELS
    from models.config import hyperparameters
    from pipeline.bench.models import bench, markdown, model_spec, write

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        specs = [model_spec(m) for m in models]
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    unknown = [name for name, _ in specs if name not in MODELS]
    if unknown:
        raise UsageError(f"unknown model(s) {unknown}; known: {', '.join(sorted(MODELS))}")
    for name, overrides in specs:  # a misspelt override fails now, not after the models before it have trained
        try:
            hyperparameters(name, overrides=overrides)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from exc
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    rows = bench(args.dataset, args.protocol, models, shared=args.shared, settings=_settings(args), peer=args.peer,
                 epochs=args.epochs, device=args.device, seeds=args.seeds)
    write(rows, args.json, args.markdown)
    sys.stdout.write(markdown(rows))
    return 0


def _cmd_bench_gpu(args: argparse.Namespace) -> int:
    from pipeline.bench.gpu import main

    try:
        return main(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, true/false), else strings."""
    from models.config import parse_overrides

    try:
        return parse_overrides(items)
    except ValueError as exc:
        raise UsageError(f"--set: {exc}") from None
