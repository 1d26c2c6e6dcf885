-- recommendations_enriched: the latest recommendations with the item's title and the best explanation.
-- grain: one row per (model, user_id, rank)
create or replace view recommendations_enriched as
with recommended as (
    select * from latest_recommendations
),

best_explanation as (
    select
        -- ids
        run_id,
        user_id,
        item_id,
        -- explanation
        explanation,
        path_json
    from recommendation_explanations
    where path_rank = 1
)

select
    -- partition
    recommended.run_date,
    recommended.model,
    -- ids
    recommended.user_id,
    recommended.item_id,
    -- ranking
    recommended.rank,
    recommended.score,
    -- item
    catalog_items.title,
    catalog_items.entity_iri,
    -- explanation
    best_explanation.explanation,
    best_explanation.path_json,
    -- lineage
    recommended.run_id,
    recommended.kg_version,
    recommended.model_version
from recommended
left join catalog_items
    on recommended.item_id = catalog_items.item_id
left join best_explanation
    on recommended.run_id = best_explanation.run_id
    and recommended.user_id = best_explanation.user_id
    and recommended.item_id = best_explanation.item_id
;
