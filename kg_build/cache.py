"""On-disk cache of query results, keyed by sha256(endpoint, query text).

A run that is killed or fails keeps every result it finished; the next run over the same cache
folder sends only the queries it lacks. Entries are written to a temporary file and renamed, so a
kill mid-write never leaves a half entry that would be trusted.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime
from pathlib import Path

from kg_build.sparql import Result


class QueryCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Result | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        fetched_at = datetime.fromisoformat(data["fetched_at"])
        return Result(bindings=data["bindings"], max_rows=data["max_rows"], fetched_at=fetched_at)

    def put(self, key: str, result: Result) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        payload = {
            "fetched_at": result.fetched_at.isoformat(), "max_rows": result.max_rows, "bindings": result.bindings,
        }
        tmp.write_text(json.dumps(payload, separators=(",", ":")))
        os.replace(tmp, path)


def prune(parent: Path, keep_after: date) -> list[Path]:
    """Remove ``run_date=D`` cache folders under ``parent`` older than ``keep_after``."""
    removed = []
    for folder in parent.glob("run_date=*") if parent.exists() else []:
        try:
            day = date.fromisoformat(folder.name.split("=", 1)[1])
        except ValueError:
            continue
        if day < keep_after:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
