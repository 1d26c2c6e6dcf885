"""Versions of the KG in the lake: ``lake/kg/version=N/`` and the published one in ``lake/kg/_CURRENT``.

A build for run date D writes a new version, or replaces the version already built for D when that
one is not published (a retry or a re-run of the same night); the published version is never
rewritten by a build. Every version's manifest records its run date (``extra.run_date``).
"""

from __future__ import annotations

from datetime import date

from kg_build.tables import KG, SCHEMAS
from pipeline.lake import Lake, LakeError, Manifest

DATASET = "kg"


def key(version: int) -> dict[str, str]:
    return {"version": str(version)}


def versions(lake: Lake) -> list[int]:
    """Complete versions, oldest first."""
    return sorted(int(p["version"]) for p in lake.partitions(DATASET) if "version" in p)


def published(lake: Lake) -> int | None:
    current = lake.current(DATASET)
    return int(current["version"]) if current else None


def built_for(lake: Lake, run_date: date) -> int | None:
    """The newest version built for ``run_date``, if any."""
    found = [v for v in versions(lake) if lake.manifest(DATASET, key(v)).extra.get("run_date") == run_date.isoformat()]
    return found[-1] if found else None


def version_to_build(lake: Lake, run_date: date) -> int:
    """The run date's unpublished version (rebuilt in place), else the next number."""
    mine = built_for(lake, run_date)
    if mine is not None and mine != published(lake):
        return mine
    return max(versions(lake), default=0) + 1


def version_for(lake: Lake, run_date: date, step: str) -> int:
    """The version built for ``run_date``; a clear error when there is none."""
    version = built_for(lake, run_date)
    if version is None:
        raise LakeError(f"{step}: the lake has no KG built for {run_date}: run `kgrec build --date {run_date}` first")
    return version


def manifest(lake: Lake, version: int) -> Manifest:
    return lake.manifest(DATASET, key(version))


def read(lake: Lake, version: int) -> KG:
    """The tables of one version (``kgrec``'s own or a published copy)."""
    return KG.from_tables({name: lake.read(DATASET, key(version), name) for name in SCHEMAS})
