"""Trained models on disk: ``<home>/models/<model>/version=N/``.

A version holds ``model.pt`` (the best ``state_dict``, loaded with ``weights_only=True``),
``last.pt`` (the resume point), ``metrics.jsonl`` (one line per epoch), ``config.json``
(hyperparameters, training settings, the KG version and data counts, code version, timings) and
``eval.json`` (test and cold-start metrics). Training writes into ``version=N.partial/`` and renames
it into place when done, so a listed version is always complete; an interrupted run leaves its
``.partial`` folder, which ``kgrec train --resume`` continues.

``<home>/models/<model>/_CURRENT`` names the promoted version, the one scoring uses by default: a new version
is promoted only when it passes the regression gate (:mod:`pipeline.steps.promote`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pipeline.errors import PermanentError

VERSION = re.compile(r"^version=(\d+)$")
PARTIAL = re.compile(r"^version=(\d+)\.partial$")
CURRENT = "_CURRENT"


class ModelStoreError(LookupError, PermanentError):
    """No such model or version; the message names what is missing and the command to make it."""


def root(home: Path, model: str) -> Path:
    return home / "models" / model


def versions(home: Path, model: str) -> list[int]:
    folder = root(home, model)
    found = [VERSION.match(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


def latest(home: Path, model: str) -> int:
    found = versions(home, model)
    if not found:
        raise ModelStoreError(f"no trained {model!r} model under {root(home, model)}: "
                              f"run `kgrec train --model {model}`")
    return found[-1]


def current(home: Path, model: str) -> int | None:
    """The promoted version, if one is."""
    pointer = root(home, model) / CURRENT
    return int(pointer.read_text(encoding="utf-8").strip()) if pointer.is_file() else None


def set_current(home: Path, model: str, version: int) -> None:
    """Point ``_CURRENT`` at ``version`` (atomically: readers see the old or the new pointer)."""
    path(home, model, version)  # must exist
    pointer = root(home, model) / CURRENT
    tmp = pointer.with_name(f".{CURRENT}.{os.getpid()}.tmp")  # two writers never share a temporary file
    tmp.write_text(f"{version}\n", encoding="utf-8")
    os.replace(tmp, pointer)


def serving(home: Path, model: str) -> int:
    """The version scoring uses: the promoted one, else (nothing promoted yet) the latest."""
    promoted = current(home, model)
    return promoted if promoted is not None else latest(home, model)


def path(home: Path, model: str, version: int) -> Path:
    folder = root(home, model) / f"version={version}"
    if not folder.is_dir():
        raise ModelStoreError(f"{model!r} has no version {version} (has: {versions(home, model) or 'none'})")
    return folder


def partial(home: Path, model: str) -> Path | None:
    """The folder of an interrupted training run, if there is one."""
    folder = root(home, model)
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := PARTIAL.match(p.name))) \
        if folder.is_dir() else []
    return found[-1][1] if found else None


def new_partial(home: Path, model: str) -> Path:
    """A fresh ``version=N.partial`` folder, N one above every version and partial folder there."""
    folder = root(home, model)
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in folder.iterdir() if (m := VERSION.match(p.name) or PARTIAL.match(p.name))]
    out = folder / f"version={max(taken, default=0) + 1}.partial"
    out.mkdir()
    return out


def complete(partial_dir: Path) -> Path:
    """Rename ``version=N.partial`` to ``version=N``; returns the final folder."""
    final = partial_dir.with_name(partial_dir.name.removesuffix(".partial"))
    os.replace(partial_dir, final)
    return final


def write_json(target: Path, data: dict[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def read_json(target: Path) -> dict[str, Any]:
    return json.loads(target.read_text(encoding="utf-8"))
