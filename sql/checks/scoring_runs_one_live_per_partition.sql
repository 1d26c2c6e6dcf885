-- At most one succeeded run per (run_date, model): a re-run supersedes the one before it.
-- violation: one row per (run_date, model) with more than one succeeded run
with live as (
    select
        run_date,
        model,
        count(*) as runs
    from scoring_runs
    where status = 'succeeded'
    group by run_date, model
)

select * from live where runs > 1
