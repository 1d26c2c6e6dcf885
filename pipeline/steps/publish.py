"""Step ``publish``: point ``lake/kg/_CURRENT`` at the run date's version, once it is sound.

Publishes only a version whose validation passed on exactly the tables it holds (the hashes
recorded by ``validate`` match the manifest's, and the files match the manifest). The pointer is
replaced atomically; readers see the old or the new version. Every publish is appended to
``lake/kg/_HISTORY.jsonl``. A backfill of a date older than the published version's is built and
validated but not published (``_CURRENT`` never moves back in time); re-publishing the current
version does nothing. ``force=True`` publishes an older version anyway (a deliberate rollback to that date's
KG); it never publishes a version that failed or skipped validation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pipeline import kg_store
from pipeline.errors import PermanentError
from pipeline.lake import Lake
from pipeline.settings import Settings

log = logging.getLogger(__name__)
HISTORY = "_HISTORY.jsonl"


class PublishRefused(RuntimeError, PermanentError):
    """The version cannot be published; the message says why and what to run."""


@dataclass(frozen=True)
class PublishResult:
    version: int
    published: bool
    previous: int | None
    reason: str

    def summary(self) -> str:
        return f"publish: {self.reason}"


def publish(settings: Settings, run_date: date, *, force: bool = False) -> PublishResult:
    lake = Lake(settings.lake_root)
    version = kg_store.version_for(lake, run_date, "publish")
    manifest = kg_store.manifest(lake, version)
    validation = manifest.extra.get("validation")
    if validation is None:
        raise PublishRefused(f"publish: KG version {version} was not validated: run `kgrec validate --date {run_date}`")
    if not validation["success"]:
        failed = ", ".join(validation["failed_checks"])
        raise PublishRefused(f"publish: KG version {version} failed validation ({failed}); "
                             f"_CURRENT stays on {kg_store.published(lake)}")
    checked = validation["tables_sha256"]
    if checked != {name: entry.sha256 for name, entry in manifest.files.items()}:
        raise PublishRefused(f"publish: KG version {version} changed after it was validated: validate it again")
    current = kg_store.published(lake)
    if current == version:
        result = PublishResult(version, False, current, f"KG version {version} is already published")
        log.info(result.summary())
        return result
    current_date = kg_store.manifest(lake, current).extra.get("run_date", "") if current is not None else ""
    rollback = current_date > run_date.isoformat()
    if rollback and not force:
        result = PublishResult(version, False, current, (
            f"KG version {version} ({run_date}) is older than the published version {current} ({current_date}): "
            "kept _CURRENT (a backfill never moves it back; force-publish rolls back)"))
        log.warning(result.summary())
        return result
    lake.publish(kg_store.DATASET, kg_store.key(version))
    _append_history(lake, {"version": version, "run_date": run_date.isoformat(), "previous": current,
                           "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "counts": manifest.extra.get("counts")})
    result = PublishResult(version, True, current, f"KG version {version} ({run_date}) published"
                           f"{' by force, rolling back' if rollback else ''} "
                           f"(was {current}) -> {lake.dataset_path(kg_store.DATASET)}/_CURRENT")
    log.info(result.summary())
    return result


def _append_history(lake: Lake, record: dict) -> None:
    path = f"{lake.dataset_path(kg_store.DATASET)}/{HISTORY}"
    try:
        with lake.fs.open_input_stream(path) as fh:
            before = fh.read()
    except FileNotFoundError:
        before = b""
    tmp = f"{path}.tmp"
    with lake.fs.open_output_stream(tmp) as fh:
        fh.write(before + (json.dumps(record, sort_keys=True) + "\n").encode())
    lake.fs.move(tmp, path)
