"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME (SQLite), this project's dags/ folder, no examples.

The environment is set once per session, before the first ``import airflow`` in this process (Airflow reads its
configuration on import); the chain and backfill tests run Airflow in subprocesses with their own homes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.settings import PROJECT_ROOT
from tests.conftest import free_port

DAGS = PROJECT_ROOT / "dags"
LOCAL = DAGS / "local.py"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow")
    os.environ.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                       "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    return home


@pytest.fixture(scope="session")
def dagbag(airflow_home: Path):
    """The project's DAGs, parsed as the DAG processor parses them (with the warnings they raised)."""
    import warnings

    from airflow.dag_processing.dagbag import BundleDagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")
    bag.caught_warnings = caught
    return bag


def pipeline_env(home: Path) -> dict[str, str]:
    """The environment of a ``dags/local.py`` subprocess: a private KGREC_HOME, mirrors on free ports, none of
    this session's AIRFLOW_* or KGREC_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KGREC_"))}
    return env | {"KGREC_HOME": str(home), "KGREC_SOURCES__WIKIDATA__MIRROR__PORT": str(free_port()),
                  "KGREC_SOURCES__DBPEDIA__MIRROR__PORT": str(free_port())}


def local(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``dags/local.py`` (what ``make run`` and ``make airflow`` run)."""
    return subprocess.run([sys.executable, str(LOCAL), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=PROJECT_ROOT)


def airflow_cli(*args: str, env: dict[str, str], home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The ``airflow`` CLI against the Airflow home that ``dags/local.py`` made under ``home``."""
    full = env | {"AIRFLOW_HOME": str(home / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                  "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    return subprocess.run([str(Path(sys.executable).with_name("airflow")), *args], capture_output=True, text=True,
                          env=full, timeout=timeout)
