"""The owner's layout and DESIGN.md's one-way imports: dags -> pipeline -> {kg_build, models}."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.settings import PROJECT_ROOT

TOP_LEVEL = ["dags", "pipeline", "kg_build", "models", "sql", "tests", "docker-compose.yml", "pyproject.toml",
             "README.md", "Makefile", ".ci", "data/sample"]
FORBIDDEN = {
    "models": {"kg_build", "pipeline", "dags", "airflow"},
    "kg_build": {"models", "pipeline", "dags", "airflow"},
    "pipeline": {"dags", "airflow"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_top_level_layout():
    missing = [name for name in TOP_LEVEL if not (PROJECT_ROOT / name).exists()]
    assert not missing


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str):
    bad = {
        str(path.relative_to(PROJECT_ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (PROJECT_ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_ci_runs_the_readme_test_command():
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()
    assert "make test" in (PROJECT_ROOT / "README.md").read_text()


def test_compose_publishes_on_loopback_only_and_holds_no_secrets():
    import yaml

    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for key, value in (service.get("environment") or {}).items():
            if "PASSWORD" in key:
                assert str(value).startswith("${"), f"{name}: {key} must come from the environment"
