"""`kgrec score` on the sample's published KG with really trained models: every user's top-K unseen items, paths
that exist in the published KG, texts that name real labels, re-runs and partial runs, Parquet exports, a
checkpoint of another KG version refused, and an unreachable warehouse that leaves the lake untouched."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import torch

from pipeline import kg_store
from pipeline.lake import Lake
from pipeline.settings import load_settings
from pipeline.steps import STEPS
from pipeline.steps.score import ScoreError, score
from pipeline.steps.train import model_inputs, train
from pipeline.warehouse import Warehouse, WarehouseError
from tests.conftest import free_port, kgrec, publish_sample
from tests.pipeline.kg_triples import triple_iris

DAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sample_mirrors) -> dict[str, str]:
    """A home with the sample KG published and KGAT and KGCN trained on it (a few epochs each)."""
    env, settings = publish_sample(tmp_path_factory.mktemp("score-home"), sample_mirrors, DAY)
    train(settings, DAY, models=["kgat", "kgcn"], epochs=4)
    return env


def warehouse_of(env: dict[str, str]) -> Warehouse:
    return Warehouse(load_settings(environ=env).warehouse.url)


def published_kg(env: dict[str, str]):
    lake = Lake(load_settings(environ=env).lake_root)
    return kg_store.read(lake, kg_store.published(lake))


def test_every_user_gets_k_unseen_items_explained_by_paths_of_the_published_kg(trained: dict[str, str]) -> None:
    settings = load_settings(environ=trained)
    result = score(settings, DAY, model="kgat", progress=False)
    kg = published_kg(trained)
    assert (result.users, result.recommendations) == (300, 6000) and result.written.replaced == 0
    wh = warehouse_of(trained)
    recs = wh.frame("select user_id, item_id, rank, score from recommendations where model = 'kgat'")
    assert recs.group_by("user_id").len()["len"].unique().to_list() == [20]
    seen = kg.interactions.join(kg.users, on="user_index").join(kg.item_entity, on="item_index")
    assert recs.join(seen.select("user_id", "item_id"), on=["user_id", "item_id"], how="semi").height == 0
    assert wh.check() == {}

    explanations = wh.frame("select user_id, item_id, path_rank, cast(path_json as text) as path_json, explanation "
                            "from recommendation_explanations where model = 'kgat'")
    assert explanations.height == result.explanations > 6000  # most items have several paths (up to 3)
    assert explanations.join(recs, on=["user_id", "item_id"], how="anti").height == 0
    # every KG triple a path walks is a triple of the published KG
    known = triple_iris(kg)
    walked = pl.DataFrame([t for text in explanations["path_json"] for t in json.loads(text)["triples"]])
    assert walked.height > 6000 and walked.join(known, on=["head", "relation", "tail"], how="anti").height == 0
    # every *label* in a text is an item title or entity label of the KG; the history item is one the user had
    labels = set(kg.entities["label"].drop_nulls())
    named = {m for text in explanations["explanation"] for m in re.findall(r"\*([^*]+)\*", text)}
    assert named and named <= labels
    history = pl.DataFrame({"user_id": explanations["user_id"],
                            "item_id": [json.loads(t)["from_item"]["item_id"] for t in explanations["path_json"]]})
    assert history.join(seen.select("user_id", "item_id"), on=["user_id", "item_id"], how="anti").height == 0
    assert explanations["explanation"].str.starts_with("Recommended because ").all()
    wh.dispose()


def test_cold_start_items_are_ranked_like_any_other(trained: dict[str, str]) -> None:
    """With K as large as the catalog, every unseen item is listed: cold-start items are never filtered out."""
    settings = load_settings(environ=trained)
    kg = published_kg(trained)
    data = model_inputs(kg)
    cold = set(kg.item_entity.filter(pl.col("item_index").is_in(data.cold_items.tolist()))["item_id"])
    assert cold
    score(settings, date(2026, 11, 1), model="kgcn", k=1000, paths=0, progress=False)
    wh = warehouse_of(trained)
    listed = wh.frame("select user_id, item_id from recommendations where model = 'kgcn' and run_date = '2026-11-01'")
    seen = kg.interactions.join(kg.users, on="user_index").join(kg.item_entity, on="item_index")
    per_user = listed.group_by("user_id").len().join(seen.group_by("user_id").len(), on="user_id", how="left")
    assert (per_user["len"] + per_user["len_right"].fill_null(0) == kg.item_entity.height).all()
    assert cold <= set(listed["item_id"])
    assert wh.check() == {}
    wh.dispose()


def test_a_rerun_replaces_and_a_partial_run_keeps_the_other_users_with_the_cli(trained: dict[str, str]) -> None:
    day = "2026-11-02"
    assert kgrec("score", "--model", "kgcn", "--date", day, "--paths", "1", env=trained).returncode == 0
    again = kgrec("score", "--model", "kgcn", "--date", day, "--export", env=trained)
    assert again.returncode == 0, again.stderr
    assert "300 users, 6,000 recommendations" in again.stdout
    some = kgrec("score", "--model", "kgcn", "--date", day, "--user", "u0001", "--user", "u0002", "-k", "5",
                 env=trained)
    assert some.returncode == 0, some.stderr
    wh = warehouse_of(trained)
    rows = wh.frame("select user_id, count(*) as n, count(distinct run_id) as runs from recommendations where "
                    "model = 'kgcn' and run_date = :d group by user_id", {"d": date.fromisoformat(day)})
    assert rows.height == 300 and rows["runs"].unique().to_list() == [1]
    assert dict(rows.filter(pl.col("user_id").is_in(["u0001", "u0002", "u0003"])).select("user_id", "n").iter_rows()) \
        == {"u0001": 5, "u0002": 5, "u0003": 20}
    runs = wh.frame("select status, count(*) from scoring_runs where model = 'kgcn' and run_date = :d group by 1",
                    {"d": date.fromisoformat(day)})
    assert dict(runs.iter_rows()) == {"superseded": 2, "succeeded": 1}
    wh.dispose()
    assert kgrec("warehouse", "check", env=trained).returncode == 0
    lake = Lake(load_settings(environ=trained).lake_root)
    exported = lake.read("recommendations", {"model": "kgcn", "run_date": day}, "recommendations")
    assert exported.height == 6000 and set(exported.columns) >= {"user_id", "rank", "item_id", "score", "run_id"}
    bad = kgrec("score", "--model", "kgcn", "--user", "nobody", env=trained)
    assert bad.returncode == 1 and "unknown user_id(s)" in bad.stderr and "nobody" in bad.stderr


def test_scoring_into_postgresql(trained: dict[str, str], postgres) -> None:
    env = {**trained, "KGREC_WAREHOUSE__URL": postgres.new_database()}
    result = kgrec("score", "--model", "kgat", env=env)
    assert result.returncode == 0, result.stderr
    wh = warehouse_of(env)
    assert wh.frame("select count(*) from latest_recommendations").item() == 6000
    top = wh.frame("select title, explanation from recommendations_enriched where rank = 1")
    assert top.height == 300 and top["title"].null_count() == 0
    assert wh.check() == {}
    wh.dispose()


def test_a_model_of_another_kg_version_is_refused(trained: dict[str, str], tmp_path: Path) -> None:
    """Yearly buckets of 5 instead of 10 years: a new KG version with more entities than the model was trained on."""
    env = {**trained, "KGREC_HOME": str(tmp_path)}
    shutil.copytree(Path(trained["KGREC_HOME"]) / "lake", tmp_path / "lake")
    shutil.copytree(Path(trained["KGREC_HOME"]) / "models", tmp_path / "models")
    settings = load_settings(environ={**env, "KGREC_KG__YEAR_BUCKET": "5"})
    for name in ("build", "validate", "publish"):
        STEPS[name](settings, DAY)  # a new version: the one built for DAY is published, so never rebuilt
    assert kg_store.published(Lake(settings.lake_root)) == 2
    with pytest.raises(ScoreError, match=r"kgat version=1 was trained on KG version 1, but the published KG is "
                                         r"version 2 \(entities \d+ vs \d+ now\).*retrain it"):
        score(settings, DAY, model="kgat", progress=False)
    result = kgrec("score", "--model", "transe", env=env)
    assert result.returncode == 1 and "no trained 'transe' model" in result.stderr, result.stderr[-500:]


def test_an_unreachable_warehouse_fails_the_step_and_leaves_the_lake_alone(trained: dict[str, str]) -> None:
    lake_root = load_settings(environ=trained).lake_root
    before = {p: p.stat().st_mtime_ns for p in lake_root.rglob("*")}
    env = {**trained, "KGREC_WAREHOUSE__URL": f"postgresql+psycopg://kgrec:pw@127.0.0.1:{free_port()}/kgrec",
           "KGREC_SCORE__EXPORT": "true"}
    result = kgrec("score", "--model", "kgcn", "--date", "2026-11-03", env=env)
    assert result.returncode == 1 and "warehouse postgresql+psycopg://kgrec:***@127.0.0.1" in result.stderr
    assert "pw@" not in result.stderr
    assert {p: p.stat().st_mtime_ns for p in lake_root.rglob("*")} == before
    with pytest.raises(WarehouseError):
        score(load_settings(environ=env), DAY, model="kgcn", progress=False)


def test_scores_follow_the_model(trained: dict[str, str]) -> None:
    """The stored scores are the model's own score() of each (user, item)."""
    from models.fit import build_model
    from pipeline import model_store

    settings = load_settings(environ=trained)
    day = date(2026, 11, 4)
    score(settings, day, model="kgat", paths=0, progress=False)
    kg = published_kg(trained)
    data = model_inputs(kg)
    folder = model_store.path(settings.home, "kgat", 1)
    config = model_store.read_json(folder / "config.json")
    net = build_model("kgat", data, config["hyper"], seed=42)
    net.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    net.eval()
    wh = warehouse_of(trained)
    recs = wh.frame("select user_id, item_id, score from recommendations where model = 'kgat' and run_date = :d "
                    "and user_id in ('u0001', 'u0150')", {"d": day})
    coded = recs.join(kg.users, on="user_id").join(kg.item_entity, on="item_id")
    with torch.no_grad():
        expected = net.score(torch.tensor(coded["user_index"].to_list()), torch.tensor(coded["item_index"].to_list()))
    assert coded.height == 40
    assert torch.allclose(expected.double(), torch.tensor(coded["score"].to_list(), dtype=torch.double), atol=1e-4)
    wh.dispose()
