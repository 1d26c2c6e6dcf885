"""Promote: make a trained model version the one scoring uses, unless it regresses.

The gate compares the candidate's test metric (``eval.json``) with the promoted version's: recall@20 for the
ranking protocol, AUC for CTR, MRR for link prediction, or ``train.gate_metric``. The candidate is promoted when
``candidate >= current * (1 - train.tolerance)``; the first version of a model is promoted as it is. Each decision
is written to the version's ``gate.json``; a rejected version stays on disk, unpromoted, and
``<home>/models/<model>/_CURRENT`` keeps pointing at the current one. The two versions were tested on the test
split of their own KG versions; the tolerance absorbs the noise of a changed KG, not a broken model.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline import model_store
from pipeline.settings import Settings

log = logging.getLogger("kgrec.promote")
GATE = "gate.json"
DEFAULT_METRIC = {"ranking": "recall@20", "ctr": "auc", "link_prediction": "mrr"}


@dataclass(frozen=True)
class PromoteResult:
    model: str
    version: int
    promoted: bool
    metric: str
    value: float
    current: int | None
    current_value: float | None
    tolerance: float
    reason: str

    def summary(self) -> str:
        return f"promote: {self.model} version={self.version}: {self.reason}"


def promote(settings: Settings, model: str, version: int | None = None, *, force: bool = False) -> PromoteResult:
    """Gate ``version`` (default: the latest) of ``model`` against the promoted version; promote it if it passes."""
    home = settings.home
    version = version if version is not None else model_store.latest(home, model)
    folder = model_store.path(home, model, version)
    metric, value = _metric(settings, model, version)
    current = model_store.current(home, model)
    tolerance = settings.train.tolerance
    current_value = None
    if current == version:  # a re-run: the recorded decision stands
        result = PromoteResult(model, version, True, metric, value, current, None, tolerance,
                               f"already promoted ({metric} {value:.4f})")
        log.info(result.summary())
        return result
    if current is None:
        reason = f"promoted: the first promoted version ({metric} {value:.4f})"
        promoted = True
    else:
        _, current_value = _metric(settings, model, current, metric)
        floor = current_value * (1 - tolerance)
        promoted = value >= floor or force
        verdict = "promoted" if value >= floor else "promoted by force despite" if force else "REJECTED:"
        reason = (f"{verdict} {metric} {value:.4f} vs {current_value:.4f} of version={current} (floor "
                  f"{floor:.4f} at tolerance {tolerance:.0%})" + ("" if promoted else f"; version={current} stays"))
    forced = promoted and current_value is not None and value < current_value * (1 - tolerance)
    if promoted:
        model_store.set_current(home, model, version)
    result = PromoteResult(model, version, promoted, metric, value, current, current_value, tolerance, reason)
    model_store.write_json(folder / GATE, {**asdict(result), "forced": forced,
                                           "decided_at": datetime.now(UTC).isoformat(timespec="seconds")})
    (log.info if promoted else log.warning)(result.summary())
    return result


def _metric(settings: Settings, model: str, version: int, name: str | None = None) -> tuple[str, float]:
    folder = model_store.path(settings.home, model, version)
    evaluation: dict[str, Any] = model_store.read_json(folder / "eval.json") if (folder / "eval.json").exists() \
        else {}
    name = name or settings.train.gate_metric or DEFAULT_METRIC.get(evaluation.get("protocol", ""), "")
    value = evaluation.get("test", {}).get(name)
    if value is None:
        raise model_store.ModelStoreError(
            f"{model} version={version} has no test {name or 'metric'} in {folder / 'eval.json'} (has: "
            f"{', '.join(sorted(evaluation.get('test', {}))) or 'no evaluation'}): re-run `kgrec evaluate --model "
            f"{model} --version {version}` or set train.gate_metric")
    return name, float(value)
