"""
### kg_refresh: rebuild the knowledge graph every night

ingest the catalog → extract each SPARQL source (one mapped task per source) → align items to entities → pull the
aligned items' facts (when configured) → build KG version N → validate it (Great Expectations) → publish it, which
moves `lake/kg/_CURRENT` and emits the Asset **kg** that schedules `kg_train`. A failed suite fails the run with
its report in the `validate` log and publishes nothing; a backfilled date older than the published KG is built and
validated but not published (unless `force_publish`). Every task rewrites only its run date's partitions, so
retries, re-runs and backfills are safe. The run's report is `lake/reports/run_date=D/report.html`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task
from kgrec_airflow import DEFAULT_ARGS, KG, KG_POOL, NIGHTLY, TAGS, run_date, settings


@dag(
    schedule=NIGHTLY, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
    tags=TAGS, doc_md=__doc__,
    params={
        "sources": Param([], type="array", items={"type": "string"}, uniqueItems=True,
                         description="sources to extract (wikidata, dbpedia); empty: every configured source"),
        "item_limit": Param(None, type=["null", "integer"], minimum=1,
                            description="keep only the first N catalog items (a trial run); empty: all"),
        "force_publish": Param(False, type="boolean",
                               description="publish even when the date is older than the published KG (a rollback)"),
    },
)
def kg_refresh():
    @task
    def ingest(params=None) -> str:
        from pipeline.steps.ingest import ingest

        return ingest(settings(params), run_date(get_current_context())).summary()

    @task
    def sources(params=None) -> list[str]:
        return list(settings(params).sources)

    @task(map_index_template="{{ task.op_kwargs['source'] }}")
    def extract(source: str, params=None) -> str:
        from pipeline.steps.extract import extract_source

        cfg = settings(params)
        facts = cfg.extract.fact_entities == "candidates"
        return extract_source(cfg, run_date(get_current_context()), source, facts=facts).path

    @task
    def align(params=None) -> str:
        from pipeline.steps.align import align

        return align(settings(params), run_date(get_current_context())).summary()

    @task(map_index_template="{{ task.op_kwargs['source'] }}")
    def extract_facts(source: str, params=None) -> str:
        from pipeline.steps.extract import extract_source

        cfg = settings(params)
        if cfg.extract.fact_entities != "aligned":
            return f"facts of {source} were pulled with its candidates (extract.fact_entities)"
        return extract_source(cfg, run_date(get_current_context()), source, candidates=False, facts=True).path

    @task(pool=KG_POOL)
    def build(params=None) -> int:
        from pipeline.steps.build import build

        return build(settings(params), run_date(get_current_context())).version

    @task(pool=KG_POOL)
    def validate(params=None) -> str:
        from pipeline.steps.validate import validate

        return validate(settings(params), run_date(get_current_context())).report_path

    @task(outlets=[KG], pool=KG_POOL)
    def publish(params=None, outlet_events=None) -> int:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.steps.publish import publish

        day = run_date(get_current_context())
        result = publish(settings(params), day, force=params["force_publish"])
        if not result.published:  # nothing new for kg_train: no Asset event
            raise AirflowSkipException(result.reason)
        outlet_events[KG].extra = {"run_date": day.isoformat(), "kg_version": result.version}
        return result.version

    @task
    def report(params=None) -> str:
        from pipeline.report import write_report

        return write_report(settings(params), run_date(get_current_context())).summary()

    names = sources()
    pulled = extract.expand(source=names)
    facts = extract_facts.expand(source=names)
    ingest() >> pulled >> align() >> facts >> build() >> validate() >> publish() >> report().as_teardown()


kg_refresh()
