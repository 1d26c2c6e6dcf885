"""The per-run HTML report: ``lake/reports/run_date=D/report.html``, with the run's facts in its manifest.

One page per run date with what that date produced so far: the KG version built for it (counts, triples per
relation, alignment coverage, validation verdict, whether it is published), every model version trained for it
(training curve, test metrics, promotion decision) and its scoring runs with sample explanations. Each DAG ends by
rewriting it, so the page grows as the chain runs; the Airflow task logs link to it.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pipeline import kg_store, model_store
from pipeline.lake import Lake, run_date_key
from pipeline.settings import Settings, config_hash

log = logging.getLogger("kgrec.report")
DATASET = "reports"
PAGE = "report.html"
SAMPLE_USERS = 3
SAMPLE_K = 5
# The date's own live runs (not the latest_recommendations view, which holds each model's newest date only).
SAMPLES_SQL = """
with live as (
    select run_id from scoring_runs where run_date = :run_date and status = 'succeeded'
),
sampled as (
    select distinct user_id from recommendations where run_id in (select run_id from live) order by user_id limit :users
)
select r.model, r.user_id, r.rank, c.title, e.explanation
from recommendations r
join sampled on sampled.user_id = r.user_id
left join catalog_items c on c.item_id = r.item_id
left join recommendation_explanations e
    on e.run_id = r.run_id and e.user_id = r.user_id and e.item_id = r.item_id and e.path_rank = 1
where r.run_id in (select run_id from live) and r.rank <= :top_k
order by r.model, r.user_id, r.rank
"""


@dataclass(frozen=True)
class ReportResult:
    path: str
    facts: dict[str, Any]

    def summary(self) -> str:
        kg = self.facts.get("kg") or {}
        return (f"report: KG version {kg.get('version', '-')}, {len(self.facts['models'])} model versions, "
                f"{len(self.facts['scoring_runs'])} scoring runs -> file://{self.path}")


def write_report(settings: Settings, run_date: date) -> ReportResult:
    """Collect what ``run_date`` produced and (re)write its report partition."""
    lake = Lake(settings.lake_root)
    facts = {"run_date": run_date.isoformat(), "profile": settings.profile,
             "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "kg": _kg(lake, run_date),
             "models": _models(settings, run_date)}
    facts["scoring_runs"], samples = _scoring(settings, run_date)
    page = _page(facts, samples)
    key = run_date_key(run_date)
    lake.write(DATASET, key, {}, config_hash=config_hash(settings), extra=facts,
               attachments={PAGE: page.encode(), "facts.json": json.dumps(facts, indent=2).encode()})
    result = ReportResult(f"{lake.partition_path(DATASET, key)}/{PAGE}", facts)
    log.info(result.summary())
    return result


def sample_params(run_date: date) -> dict[str, Any]:
    """The parameters of :data:`SAMPLES_SQL` for a night."""
    return {"run_date": run_date, "users": SAMPLE_USERS, "top_k": SAMPLE_K}


def _kg(lake: Lake, run_date: date) -> dict[str, Any] | None:
    version = kg_store.built_for(lake, run_date)
    if version is None:
        return None
    extra = kg_store.manifest(lake, version).extra
    validation = extra.get("validation") or {}
    return {"version": version, "published": kg_store.published(lake) == version, "counts": extra.get("counts"),
            "triples_by_relation": extra.get("triples_by_relation"), "alignment": extra.get("alignment"),
            "validation": {"success": validation.get("success"), "checks": validation.get("checks"),
                           "failed": validation.get("failed_checks", [])} if validation else None}


def _models(settings: Settings, run_date: date) -> list[dict[str, Any]]:
    out = []
    root = settings.home / "models"
    for name in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        for version in model_store.versions(settings.home, name):
            folder = model_store.path(settings.home, name, version)
            config = model_store.read_json(folder / "config.json")
            if config.get("run_date") != run_date.isoformat():
                continue
            curve = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line] \
                if (folder / "metrics.jsonl").exists() else []
            out.append({"model": name, "version": version, "kg_version": config.get("kg_version"),
                        "result": config.get("result"), "eval": _json(folder / "eval.json"),
                        "gate": _json(folder / "gate.json"),
                        "curve": [{"epoch": e["epoch"], "loss": sum(e.get("loss", {}).values()),
                                   "valid": next(iter(e.get("valid", {}).values()), None)} for e in curve],
                        "valid_metric": next(iter(curve[0].get("valid", {})), None) if curve else None})
    return out


def _json(path):  # noqa: ANN001, ANN202
    return model_store.read_json(path) if path.exists() else None


def _scoring(settings: Settings, run_date: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from pipeline.warehouse import Warehouse, WarehouseError

    warehouse = Warehouse(settings.warehouse.url)
    try:
        runs = warehouse.frame(
            "select run_id, model, model_version, kg_version, status, row_count, explanation_count, error "
            "from scoring_runs "
            "where run_date = :d order by started_at", {"d": run_date})
        samples = warehouse.frame(SAMPLES_SQL, sample_params(run_date))
    except WarehouseError as exc:  # no warehouse yet (the KG DAG ran first) or no tables: the page says so
        log.info("report: no scoring runs read from the warehouse (%s)", str(exc).splitlines()[0])
        return [], []
    finally:
        warehouse.dispose()
    return runs.to_dicts(), samples.to_dicts()


def _page(facts: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>kgrec run {e(facts['run_date'])}</title>",
             "<style>body{font:14px sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#f4f4f4}"
             ".l{text-align:left}.bad{color:#b00}</style>",
             f"<h1>kgrec run {e(facts['run_date'])}</h1><p>profile {e(facts['profile'])}, written "
             f"{e(facts['generated_at'])}</p>"]
    kg = facts["kg"]
    parts.append("<h2>Knowledge graph</h2>")
    if kg is None:
        parts.append("<p>No KG was built for this date.</p>")
    else:
        v = kg["validation"] or {}
        verdict = "not validated" if not v else "passed" if v["success"] else \
            f"<span class=bad>FAILED: {e(', '.join(v['failed']))}</span>"
        parts.append(f"<p>version {kg['version']} ({'published' if kg['published'] else 'not published'}); "
                     f"validation: {verdict if not v else str(v['checks']) + ' checks ' + verdict}</p>")
        parts.append(_table(["count", "value"], [[k, f"{n:,}"] for k, n in (kg["counts"] or {}).items()]))
        a = kg["alignment"] or {}
        parts.append(f"<p>alignment coverage {a.get('coverage', 0):.1%} ({a.get('aligned', 0):,} of "
                     f"{a.get('items', 0):,} items; per source: "
                     f"{e(', '.join(f'{s} {n:,}' for s, n in (a.get('by_source') or {}).items()))})</p>")
        relations = sorted((kg["triples_by_relation"] or {}).items(), key=lambda x: -x[1]["triples"])
        parts.append(_table(["relation", "IRI", "triples"],
                            [[r["label"], iri, f"{r['triples']:,}"] for iri, r in relations]))
    parts.append("<h2>Models</h2>")
    if not facts["models"]:
        parts.append("<p>No model was trained for this date.</p>")
    for m in facts["models"]:
        gate = m["gate"] or {}
        parts.append(f"<h3>{e(m['model'])} version {m['version']} (KG version {m['kg_version']})</h3>"
                     f"<p>{e(gate.get('reason', 'not gated yet'))}</p>{_curve(m)}")
        rows = [[split, *(f"{v:.4f}" if isinstance(v, float) else e(str(v)) for v in metrics.values())]
                for split, metrics in (m["eval"] or {}).items() if isinstance(metrics, dict)]
        if rows:
            heads = next(iter(v for v in m["eval"].values() if isinstance(v, dict)))
            parts.append(_table(["split", *heads], rows))
    parts.append("<h2>Scoring</h2>")
    parts.append(_table(["run", "model", "version", "KG", "status", "recommendations", "explanation paths", "error"],
                        [[r["run_id"][:8], r["model"], r["model_version"], r["kg_version"], r["status"],
                          f"{r['row_count']:,}", f"{r['explanation_count']:,}", r["error"] or ""]
                         for r in facts["scoring_runs"]])
                 if facts["scoring_runs"] else "<p>No scoring run for this date.</p>")
    if samples:
        parts.append("<h3>Sample explanations</h3>")
        parts.append(_table(["model", "user", "rank", "item", "why"],
                            [[s["model"], s["user_id"], s["rank"], s["title"] or "",
                              s["explanation"] or "(no KG path links it to the user's history)"] for s in samples]))
    return "\n".join(parts)


def _table(heads: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td class=l>{e(str(c))}</td>" if isinstance(c, str) and not c[:1].isdigit()
                                    else f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _curve(m: dict[str, Any], width: int = 480, height: int = 140) -> str:
    """Inline SVG: training loss (grey) and the validation metric (blue) per epoch, each scaled to its range."""
    points = m["curve"]
    if len(points) < 2:
        return ""
    lines = []
    for key, colour in (("loss", "#888"), ("valid", "#1f6fb2")):
        values = [p[key] for p in points if p[key] is not None]
        if len(values) < 2:
            continue
        lo, hi = min(values), max(values)
        xy = " ".join(f"{10 + i * (width - 20) / (len(values) - 1):.1f},"
                      f"{height - 10 - (v - lo) / ((hi - lo) or 1) * (height - 20):.1f}" for i, v in enumerate(values))
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{xy}"/>')
    label = html.escape(f"loss (grey), validation {m['valid_metric']} (blue) over {len(points)} epochs")
    return (f'<figure><svg width="{width}" height="{height}" style="border:1px solid #ddd">{"".join(lines)}</svg>'
            f"<figcaption>{label}</figcaption></figure>")
