-- Scores never rise with rank.
-- violation: one row per recommendation that scores above the one ranked before it
with ordered as (
    select
        run_date,
        model,
        user_id,
        rank,
        score,
        lag(score) over (partition by run_date, model, user_id order by rank) as score_before
    from recommendations
)

select * from ordered where score > score_before
