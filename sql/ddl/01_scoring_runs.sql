-- scoring_runs: one row per scoring run, written last in the run's own transaction.
-- grain: one row per run_id
-- status: succeeded (its partition is live), superseded (a later run of the same run_date and model replaced it),
-- expired (its partition fell out of the retention window), failed (written after a failed attempt; no data).
create table if not exists scoring_runs (
    -- ids
    run_id text not null primary key,
    run_date date not null,
    model text not null,
    -- lineage
    kg_version integer not null,
    model_version integer not null,
    -- outcome
    status text not null,
    row_count bigint not null,
    explanation_count bigint not null,
    metrics json,
    error text,
    -- timestamps
    started_at timestamp with time zone not null,
    finished_at timestamp with time zone
);
