-- No item appears twice in one user's list.
-- violation: one row per (run_date, model, user_id, item_id) that appears more than once
with listed as (
    select
        run_date,
        model,
        user_id,
        item_id,
        count(*) as copies
    from recommendations
    group by run_date, model, user_id, item_id
)

select * from listed where copies > 1
