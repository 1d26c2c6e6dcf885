-- PostgreSQL only: the keys the partition swap and the consumer views look up by. DuckDB scans its column
-- segments instead (its indexes cost loads and reject a delete and re-insert of one key in a transaction).
create unique index if not exists recommendations_key
    on recommendations (run_date, model, user_id, rank);

create index if not exists recommendation_explanations_key
    on recommendation_explanations (run_date, model, user_id, item_id);

create index if not exists scoring_runs_model_date
    on scoring_runs (model, run_date);
