-- Each user's ranks are 1..n without gaps (n is K, or fewer when the user has seen almost every item).
-- violation: one row per (run_date, model, user_id) whose ranks are not 1..n
with lists as (
    select
        run_date,
        model,
        user_id,
        min(rank) as first_rank,
        max(rank) as last_rank,
        count(distinct rank) as ranks
    from recommendations
    group by run_date, model, user_id
)

select * from lists where first_rank <> 1 or last_rank <> ranks
