"""
### kg_train: train the recommenders on each newly published KG

Scheduled on the Asset **kg** (emitted by `kg_refresh` when it publishes). Trains each configured model (one
mapped task per model, on the `gpu` queue when `KGREC_TRAIN__QUEUE=gpu`) to early stopping on the published KG,
evaluates it on the test and cold-start splits, then promotes it only if its test metric does not fall more than
`train.tolerance` below the promoted version's. When at least one model was promoted it emits the Asset **model**,
which schedules `kg_score`. A re-run of the same date reuses the versions it trained (and resumes an interrupted
one), so retries are cheap and safe.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task
from kgrec_airflow import DEFAULT_ARGS, KG, MODEL, TAGS, TRAIN_QUEUE, run_date, settings


@dag(
    schedule=[KG], start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
    tags=TAGS, doc_md=__doc__,
    params={
        "models": Param([], type="array", items={"type": "string"}, uniqueItems=True,
                        description="models to train (kgcn, kgat, …); empty: the profile's train.models"),
        "epochs": Param(None, type=["null", "integer"], minimum=1,
                        description="cap on epochs; empty: each model's default"),
    },
)
def kg_train():
    @task
    def models(params=None) -> list[str]:
        return list(settings(params).train.models)

    @task(queue=TRAIN_QUEUE, map_index_template="{{ task.op_kwargs['model'] }}")
    def train(model: str, params=None) -> dict:
        from pipeline.steps.train import train

        folder = train(settings(params), run_date(get_current_context()), models=[model], reuse=True)[0]
        return {"model": model, "version": int(folder.name.removeprefix("version="))}

    @task(map_index_template="{{ task.op_kwargs['trained']['model'] }}")
    def promote(trained: dict, params=None) -> dict:
        from pipeline.steps.promote import promote

        result = promote(settings(params), trained["model"], trained["version"])
        return {**trained, "promoted": result.promoted, "reason": result.reason}

    @task(outlets=[MODEL])
    def announce(decisions: list[dict], params=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline import kg_store
        from pipeline.lake import Lake

        decisions = list(decisions[:])  # one fetch of the mapped results (iterating probes past the end)
        promoted = {d["model"]: d["version"] for d in decisions if d["promoted"]}
        if not promoted:  # every model regressed: keep scoring with the promoted versions, no Asset event
            raise AirflowSkipException("no model was promoted: " + "; ".join(d["reason"] for d in decisions))
        day = run_date(get_current_context())
        kg_version = kg_store.published(Lake(settings(params).lake_root))
        outlet_events[MODEL].extra = {"run_date": day.isoformat(), "kg_version": kg_version, "models": promoted}
        return promoted

    @task
    def report(params=None) -> str:
        from pipeline.report import write_report

        return write_report(settings(params), run_date(get_current_context())).summary()

    decisions = promote.expand(trained=train.expand(model=models()))
    announce(decisions) >> report().as_teardown()


kg_train()
