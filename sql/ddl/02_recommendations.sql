-- recommendations: each user's ranked top-K items of one scoring run.
-- grain: one row per (run_date, model, user_id, rank); a run replaces its (run_date, model) partition whole.
create table if not exists recommendations (
    -- partition
    run_date date not null,
    model text not null,
    -- ids
    user_id text not null,
    item_id text not null,
    run_id text not null,
    -- ranking
    rank smallint not null,
    score double precision not null
);
