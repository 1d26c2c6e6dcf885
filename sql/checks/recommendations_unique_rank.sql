-- No user has two rows at one rank in a partition.
-- violation: one row per (run_date, model, user_id, rank) that appears more than once
with ranked as (
    select
        run_date,
        model,
        user_id,
        rank,
        count(*) as copies
    from recommendations
    group by run_date, model, user_id, rank
)

select * from ranked where copies > 1
