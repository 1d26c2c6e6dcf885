-- Every explanation explains a recommendation of the same run.
-- violation: one row per explanation without its recommendation
with explained as (
    select
        run_id,
        user_id,
        item_id,
        path_rank
    from recommendation_explanations
)

select explained.*
from explained
left join recommendations
    on explained.run_id = recommendations.run_id
    and explained.user_id = recommendations.user_id
    and explained.item_id = recommendations.item_id
where recommendations.run_id is null
