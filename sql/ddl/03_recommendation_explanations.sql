-- recommendation_explanations: the model's best knowledge-graph paths from a user's history to a recommended item.
-- grain: one row per (run_date, model, user_id, item_id, path_rank); items without a path have no rows.
-- path_json: {"from_item": ..., "hops": [...], "triples": [[head_iri, relation_iri, tail_iri], ...], "score": ...}
create table if not exists recommendation_explanations (
    -- partition
    run_date date not null,
    model text not null,
    -- ids
    user_id text not null,
    item_id text not null,
    run_id text not null,
    -- explanation
    path_rank smallint not null,
    path_json json not null,
    explanation text not null
);
