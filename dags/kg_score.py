"""
### kg_score: batch-score every user into the warehouse

Scheduled on the Asset **model** (emitted by `kg_train` when it promotes a model). Scores each promoted model (or
`score.model` when the profile names one): every user's top-K unseen items with their KG-path explanations,
swapped into the warehouse's `(run_date, model)` partition in one transaction. Then runs the check queries of
`sql/checks/` over the warehouse (any violating row fails the run) and emits the Asset **recommendations**.
Re-running a date replaces its partition; SQL readers see the old lists or the new ones, never a mix.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task
from kgrec_airflow import (
    DEFAULT_ARGS,
    MODEL,
    RECOMMENDATIONS,
    TAGS,
    run_date,
    settings,
    triggering_extra,
)


@dag(
    schedule=[MODEL], start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
    tags=TAGS, doc_md=__doc__,
    params={
        "models": Param([], type="array", items={"type": "string"}, uniqueItems=True,
                        description="models to score with; empty: score.model, else the models kg_train promoted, "
                        "else the profile's train.models"),
        "k": Param(None, type=["null", "integer"], minimum=1, maximum=1000,
                   description="recommendations per user; empty: score.k"),
    },
)
def kg_score():
    @task
    def models(params=None) -> list[str]:
        cfg = settings(params)
        promoted = sorted({m for found in triggering_extra(get_current_context(), "models") for m in found})
        return params["models"] or ([cfg.score.model] if cfg.score.model else promoted or list(cfg.train.models))

    @task(map_index_template="{{ task.op_kwargs['model'] }}")
    def score(model: str, params=None) -> dict:
        from pipeline.steps.score import score

        result = score(settings(params), run_date(get_current_context()), model=model, k=params["k"],
                       progress=False)
        return {"model": model, "run_id": result.run_id, "rows": result.recommendations}

    @task(outlets=[RECOMMENDATIONS])
    def check(runs: list[dict], params=None, outlet_events=None) -> int:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.warehouse import Warehouse

        runs = list(runs[:])  # one fetch of the mapped results (iterating probes past the end)
        warehouse = Warehouse(settings(params).warehouse.url)
        try:
            violations = warehouse.check()
        finally:
            warehouse.dispose()
        if violations:
            raise AirflowFailException("check queries of sql/checks found violating rows: " + "; ".join(
                f"{name}: {rows[:3]}" for name, rows in violations.items()))
        day = run_date(get_current_context())
        outlet_events[RECOMMENDATIONS].extra = {"run_date": day.isoformat(), "runs": runs}
        return sum(r["rows"] for r in runs)

    @task
    def report(params=None) -> str:
        from pipeline.report import write_report

        return write_report(settings(params), run_date(get_current_context())).summary()

    check(score.expand(model=models())) >> report().as_teardown()


kg_score()
