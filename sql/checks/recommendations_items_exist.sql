-- Every recommended item is a catalog item.
-- violation: one row per recommendation whose item_id is not in catalog_items
with recommended as (
    select
        run_date,
        model,
        user_id,
        rank,
        item_id
    from recommendations
)

select recommended.*
from recommended
left join catalog_items
    on recommended.item_id = catalog_items.item_id
where catalog_items.item_id is null
