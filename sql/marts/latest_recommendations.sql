-- latest_recommendations: for each model, the recommendations of its newest successful scoring run.
-- grain: one row per (model, user_id, rank)
create or replace view latest_recommendations as
with runs as (
    select
        -- ids
        run_id,
        model,
        -- lineage
        kg_version,
        model_version,
        -- ordering
        row_number() over (partition by model order by run_date desc, finished_at desc) as newest
    from scoring_runs
    where status = 'succeeded'
),

latest as (
    select
        run_id,
        kg_version,
        model_version
    from runs
    where newest = 1
)

select
    -- partition
    recommendations.run_date,
    recommendations.model,
    -- ids
    recommendations.user_id,
    recommendations.item_id,
    recommendations.run_id,
    -- ranking
    recommendations.rank,
    recommendations.score,
    -- lineage
    latest.kg_version,
    latest.model_version
from recommendations
inner join latest
    on recommendations.run_id = latest.run_id
;
