"""Every registered model has a test: a RecModelCase subclass here, or an entry of test_kge's CASES."""

from __future__ import annotations

import importlib
import pkgutil

import tests.models
from models import MODELS
from tests.models.cases import RecModelCase


def _tested_classes() -> set[type]:
    tested: set[type] = set()
    for info in pkgutil.iter_modules(tests.models.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"tests.models.{info.name}")
            tested |= {cls for cls, _ in getattr(module, "CASES", {}).values()}
    for case in _subclasses(RecModelCase):
        if hasattr(case, "name"):
            tested.add(MODELS[case.name])
    return tested


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in [direct, *_subclasses(direct)]]


def test_every_registered_model_has_a_test() -> None:
    untested = sorted(name for name, cls in MODELS.items() if cls not in _tested_classes())
    assert not untested, f"registered models without a test: {untested}"
