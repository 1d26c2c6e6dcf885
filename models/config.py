"""Hyperparameters: the defaults in ``defaults.toml``, per model and per dataset, plus overrides.

``hyperparameters("kgcn", dataset="kgcn-music", overrides={"hops": 2, "train.lr": 1e-3})`` returns the
model's keyword arguments and its :class:`~models.trainer.TrainConfig`. Keys starting with ``train.``
go to the trainer; an unknown key fails here, naming the key and the accepted ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import tomllib
from pathlib import Path
from typing import Any

from models.trainer import TrainConfig

DEFAULTS = Path(__file__).with_name("defaults.toml")


def load_defaults(path: Path = DEFAULTS) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def hyperparameters(
    model: str, *, dataset: str | None = None, overrides: dict[str, Any] | None = None, path: Path = DEFAULTS
) -> tuple[dict[str, Any], TrainConfig]:
    from models import MODELS

    if model not in MODELS:
        raise KeyError(f"unknown model {model!r}; known: {', '.join(sorted(MODELS))}")
    table = load_defaults(path)
    section = dict(table.get(model, {}))
    per_dataset = section.pop("datasets", {}).get(dataset or "", {})
    train = {**table.get("train", {}), **section.pop("train", {}), **per_dataset.get("train", {})}
    hyper = {**section, **{k: v for k, v in per_dataset.items() if k != "train"}}
    for key, value in (overrides or {}).items():
        if key.startswith("train."):
            train[key.removeprefix("train.")] = value
        else:
            hyper[key] = value
    _check(model, hyper, accepted_arguments(MODELS[model]))
    _check(f"{model} training", train, {f.name for f in dataclasses.fields(TrainConfig)})
    return hyper, TrainConfig(**train)


def accepted_arguments(cls: type) -> set[str]:
    """Keyword arguments a model takes beyond what ``from_data`` fills in from the data."""
    names: set[str] = set()
    for fn in (cls.from_data, cls.__init__):
        params = inspect.signature(fn).parameters
        names |= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    for base in cls.__mro__[1:]:  # KGNNLS passes **kgcn through to KGCN
        if "__init__" in base.__dict__ and base.__module__.startswith("models."):
            names |= {n for n, p in inspect.signature(base.__init__).parameters.items() if p.kind is p.KEYWORD_ONLY}
    return names - {"num_users", "num_items", "num_entities", "num_relations", "kg", "ripple", "train_users",
                    "train_items"}


def _check(what: str, values: dict[str, Any], accepted: set[str]) -> None:
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise KeyError(f"{what}: unknown hyperparameter(s) {unknown}; accepted: {sorted(accepted)}")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> overrides; values parsed as JSON when they can be (numbers, true/false, lists),
    else kept as strings. ValueError names a malformed item."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
