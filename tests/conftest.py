"""Shared fixtures: the real datasets in ../shared/data, free ports, a clean KGREC_* environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.settings import PROJECT_ROOT

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
SAMPLE = PROJECT_ROOT / "data" / "sample"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip, with the reason, where no CUDA device is present (CI has none)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here); run `pytest -m gpu` on a machine with one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; skipped when absent, except under CI=true where its absence is a failure."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SHARED_DATA} is missing: CI must have ../shared beside the checkout")
    pytest.skip(f"{SHARED_DATA} not found: this test reads the real datasets in ../shared/data")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KGREC_* variable of the caller's shell leaks into a test."""
    for var in list(os.environ):
        if var.startswith("KGREC_"):
            monkeypatch.delenv(var)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kgrec(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``kgrec`` console script, as a user would."""
    exe = Path(sys.executable).with_name("kgrec")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KGREC_")} | (env or {})
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="session")
def serve_mirror(tmp_path_factory: pytest.TempPathFactory):
    """Start (once per session) a real oxigraph mirror over files; returns its endpoint."""
    from pipeline import mirror

    home = tmp_path_factory.mktemp("mirrors")
    endpoints: dict[str, str] = {}

    def serve(name: str, files: list[Path | str]) -> str:
        if name not in endpoints:
            spec = mirror.MirrorSpec(name, free_port(), mirror.expand_files(files))
            mirror.start(spec, home)
            endpoints[name] = spec.endpoint
        return endpoints[name]

    yield serve
    for name in endpoints:
        mirror.stop(home, name)


@pytest.fixture(scope="session")
def sample_wikidata(serve_mirror) -> str:
    return serve_mirror("sample-wikidata", [SAMPLE / "mirror" / "wikidata.nt"])


@pytest.fixture(scope="session")
def sample_mirrors(serve_mirror) -> dict[str, str]:
    """The sample's two mirrors, as the KGREC_* variables that point the sample profile at them."""
    return {
        "KGREC_SOURCES__WIKIDATA__ENDPOINT": serve_mirror("sample-wikidata", [SAMPLE / "mirror" / "wikidata.nt"]),
        "KGREC_SOURCES__DBPEDIA__ENDPOINT": serve_mirror("sample-dbpedia", [SAMPLE / "mirror" / "dbpedia.nt"]),
    }


def publish_sample(home: Path, mirrors: dict[str, str], day):  # noqa: ANN001, ANN201 - (env, Settings)
    """Run every KG step (ingest to publish) of the sample for ``day`` into ``home``: its environment and settings."""
    from pipeline.settings import load_settings
    from pipeline.steps import STEPS

    env = {"KGREC_HOME": str(home), **mirrors}
    settings = load_settings(environ=env)
    for step in STEPS.values():
        step(settings, day)
    return env, settings


@pytest.fixture(scope="session")
def shared_wikidata(serve_mirror, shared_data: Path) -> str:
    return serve_mirror("shared-wikidata", sorted((shared_data / "wikidata-movielens-small").glob("*.nt.gz")))


@pytest.fixture(scope="session")
def shared_dbpedia(serve_mirror, shared_data: Path) -> str:
    return serve_mirror("shared-dbpedia", sorted((shared_data / "dbpedia-movielens-1m").glob("*.nt.gz")))


@pytest.fixture(scope="session")
def shared_dbpedia_music(serve_mirror, shared_data: Path) -> str:
    return serve_mirror("shared-dbpedia-music", sorted((shared_data / "dbpedia-lastfm-hetrec").glob("*.nt.gz")))


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (initdb + pg_ctl in a temp dir, tests/pgserver.py); skipped
    when the machine has no PostgreSQL binaries, except under CI=true where that is a failure."""
    from tests.pgserver import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI must run the warehouse tests on a real PostgreSQL)")
        pytest.skip(str(exc))
    with server:
        yield server
