"""The ``train`` and ``score`` steps with ``device = "cuda"`` (marked ``gpu``: skipped without a GPU): kgcn-music
published into a home of its own, KGAT and KGCN trained on the GPU, every user's top 20 with explanations into
DuckDB, each path's triples real triples of the published KG."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipeline.bench.amazon import publish
from pipeline.settings import load_settings
from pipeline.steps.score import score
from pipeline.steps.train import train
from pipeline.warehouse import Warehouse
from tests.pipeline.kg_triples import triple_iris

pytestmark = [pytest.mark.gpu, pytest.mark.shared]
DAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    from kg_build.benchmarks import load_kgcn_music
    from kg_build.splits import SplitConfig

    home = tmp_path_factory.mktemp("cuda-home")
    kg = load_kgcn_music(shared_data / "kgcn-music", SplitConfig(valid=0.1, test=0.1, seed=2026))
    publish(home, kg, DAY, validated=importlib.util.find_spec("great_expectations") is not None)
    settings = load_settings("sample", overrides={"home": str(home), "device": "cuda"}, environ={})
    train(settings, DAY, models=["kgat", "kgcn"], epochs=3)
    return settings, kg


@pytest.mark.parametrize("model", ["kgat", "kgcn"])
def test_train_and_score_on_cuda_with_explanations(home, model: str) -> None:
    settings, kg = home
    folder = sorted((settings.home / "models" / model).glob("version=*"))[-1]
    config = json.loads((folder / "config.json").read_text())
    assert config["train"]["device"] == "cuda" and config["train"]["precision"] == "fp32"
    result = score(settings, DAY, model=model, progress=False)
    assert result.metrics["device"].startswith("cuda")
    users = kg.users.height
    assert result.users == users and result.recommendations == 20 * users and result.explanations > 0
    wh = Warehouse(settings.warehouse.url)
    paths = wh.frame("select cast(path_json as text) as path_json from recommendation_explanations "
                     "where model = :m", {"m": model})
    known = triple_iris(kg)
    walked = pl.DataFrame([t for text in paths["path_json"] for t in json.loads(text)["triples"]])
    assert walked.height and walked.join(known, on=["head", "relation", "tail"], how="anti").height == 0
    assert wh.check() == {}
    wh.dispose()
