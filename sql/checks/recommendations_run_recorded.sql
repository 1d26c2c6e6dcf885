-- Every partition belongs to one successful run whose row count matches it.
-- violation: one row per (run_date, model, run_id) without a succeeded scoring_runs row of that size
with partitions as (
    select
        run_date,
        model,
        run_id,
        count(*) as rows_found
    from recommendations
    group by run_date, model, run_id
)

select
    partitions.*,
    scoring_runs.status,
    scoring_runs.row_count
from partitions
left join scoring_runs
    on partitions.run_id = scoring_runs.run_id
where scoring_runs.run_id is null
    or scoring_runs.status <> 'succeeded'
    or scoring_runs.row_count <> partitions.rows_found
    or scoring_runs.run_date <> partitions.run_date
    or scoring_runs.model <> partitions.model
