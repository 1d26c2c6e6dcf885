"""``kgrec train``, ``kgrec evaluate`` and ``kgrec bench models``: the model commands of the CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cli import UsageError, _date_arg, _run_date, _settings  # cli imports this module inside _parser()


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train models on the published KG (new model versions)",
                           description="Trains each model (default: the profile's [train] models) on the "
                           "published KG to early stopping and stores <home>/models/<model>/version=N/ "
                           "(model.pt, config.json, metrics.jsonl, eval.json).")
    _date_arg(train)
    train.add_argument("--model", action="append", dest="models", metavar="NAME",
                       help="a model to train (repeatable; default: the profile's train.models)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the profile's device (auto)")
    train.add_argument("--epochs", type=int, help="cap on epochs")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                       help="hyperparameter override, e.g. hops=2 or train.lr=0.001 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue the model's interrupted run")
    train.set_defaults(handler=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="evaluate a stored model version on its KG version",
                              description="Test and cold-start metrics of a stored model (default: its latest "
                              "version), written to its eval.json and printed as JSON.")
    evaluate.add_argument("--model", required=True, metavar="NAME")
    evaluate.add_argument("--version", type=int, help="model version (default: the latest)")
    evaluate.set_defaults(handler=_cmd_evaluate)

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


def _cmd_train(args: argparse.Namespace) -> int:
    from pipeline.steps.train import train

    folders = train(_settings(args), _run_date(args), models=args.models,
                    overrides=_assignments(args.assignments), epochs=args.epochs, device=args.device,
                    resume=args.resume)
    for folder in folders:
        print(folder)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.steps.train import evaluate_model

    print(json.dumps(evaluate_model(_settings(args), args.model, args.version), indent=2))
    return 0


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


def _assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, true/false), else strings."""
    from models.config import parse_overrides

    try:
        return parse_overrides(items)
    except ValueError as exc:
        raise UsageError(f"--set: {exc}") from None
