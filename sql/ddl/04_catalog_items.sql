-- catalog_items: the items recommendations may point at, with their titles and KG entities.
-- grain: one row per item_id; a scoring run upserts the items of its KG version (items are never deleted, so older
-- partitions keep their titles).
create table if not exists catalog_items (
    -- ids
    item_id text not null primary key,
    entity_iri text not null,
    -- attributes
    title text not null,
    kg_version integer not null,
    -- timestamps
    updated_at timestamp with time zone not null
);
