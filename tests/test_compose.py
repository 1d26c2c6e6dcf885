"""docker-compose.yml and the Dockerfile: the services, queues, volumes and connections the DAGs and settings expect.

Structural checks on the parsed files (no Docker needed); `docker compose config` runs only where Docker and its
compose plugin exist. Compose's ``${VAR...}`` references are substituted as Compose would, with test values for the
variables that must be set (``${VAR:?...}``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from pipeline import connections
from pipeline.settings import PROJECT_ROOT, load_settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

AIRFLOW = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
           "airflow-worker-gpu", "airflow-init"]
OTHERS = ["postgres", "redis", "warehouse", "wikidata-mirror", "dbpedia-mirror"]
MIRRORS = ["wikidata-mirror", "dbpedia-mirror"]
KGREC_HOME = "/opt/kgrec/var"
SHARED_VOLUME = "kgrec-var"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; $$ is a literal $.
_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def required_variables(text: str) -> set[str]:
    """The variables Compose refuses to run without (``${VAR:?...}``)."""
    return {m["name"] for m in _REFERENCE.finditer(text) if m["op"] in (":?", "?")}


def compose_environment() -> dict[str, str]:
    """A value for every required variable (nothing else set, so the defaults apply)."""
    return {name: f"test-{name.lower().replace('_', '-')}" for name in required_variables(COMPOSE.read_text())}



def substitute(value: Any, env: dict[str, str]) -> Any:
    """``value`` with Compose's variable references replaced as Compose would replace them with ``env`` set."""
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        name, op, arg = m["name"], m["op"], m["arg"]
        if op in (":-", ":?"):
            present = bool(env.get(name))
        else:
            present = name in env
        if present:
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name} must be set: {arg}")
        return ""

    return _REFERENCE.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment (a mapping in this file), substituted with ``env`` (default: the test values)."""
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "write environment as a mapping"
    env = compose_environment() if env is None else env
    return {key: substitute(str(value), env) for key, value in environment.items()}


def common_env(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["x-airflow-common"]["environment"]


def source_names() -> list[str]:
    return sorted(load_settings("sample", environ={}).sources)


def test_compose_parses(compose: dict[str, Any]):
    assert isinstance(compose, dict)
    assert isinstance(compose.get("services"), dict)
    assert "x-airflow-common" in compose


def test_expected_services(services: dict[str, Any]):
    missing = sorted(set(AIRFLOW + OTHERS) - set(services))
    assert not missing, f"services missing from docker-compose.yml: {missing}"


def test_every_published_port_is_loopback(services: dict[str, Any]):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_airflow_services_share_image_env_and_volume(compose: dict[str, Any], services: dict[str, Any]):
    common = compose["x-airflow-common"]
    assert common["build"] in (".", {"context": "."}), "the image is built from the project's Dockerfile"
    assert f"{SHARED_VOLUME}:{KGREC_HOME}" in common["volumes"]
    assert SHARED_VOLUME in compose["volumes"]
    for name in AIRFLOW:
        service = services[name]
        assert service.get("image") == common["image"], name
        assert service.get("build") == common["build"], name
        env = service["environment"]
        missing = {key for key, value in common_env(compose).items() if key not in env}
        assert not missing, f"{name} lacks the common Airflow environment: {sorted(missing)}"
        assert env["KGREC_TRAIN__QUEUE"] == "gpu", name
        assert env["KGREC_HOME"] == KGREC_HOME, name
        assert f"{SHARED_VOLUME}:{KGREC_HOME}" in service["volumes"], f"{name} does not mount the shared home"


def test_common_airflow_settings(compose: dict[str, Any]):
    env = env_of({"environment": common_env(compose)})
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+asyncpg://")
    assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]).hostname == "postgres"
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
        assert str(common_env(compose)[key]).startswith("${"), f"{key} must come from the environment"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].rstrip("/").endswith("/dags")


def test_no_secret_is_written_in_the_files(compose: dict[str, Any], services: dict[str, Any]):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "FERNET")):
                assert str(value).startswith("${"), f"{name}: {key} must come from the environment"
    # URLs with credentials take their password from a variable too.
    for key, value in common_env(compose).items():
        for password in re.findall(r"://[^/:@]+:([^@]*)@", str(value)):
            assert password.startswith("${"), f"{key} has a literal password"


def test_gpu_worker_takes_the_gpu_queue_and_reserves_a_gpu(services: dict[str, Any]):
    def queues(service: dict[str, Any]) -> list[str]:
        command = service["command"]
        words = command.split() if isinstance(command, str) else list(command)
        assert words[:2] == ["celery", "worker"], words
        flag = "--queues" if "--queues" in words else "-q"
        return words[words.index(flag) + 1].split(",") if flag in words else ["default"]

    def nvidia_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
        devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        return [d for d in devices or [] if d.get("driver") == "nvidia"]

    gpu, cpu = services["airflow-worker-gpu"], services["airflow-worker"]
    assert queues(gpu) == ["gpu"]
    assert queues(cpu) == ["default"]
    [device] = nvidia_devices(gpu)
    assert "gpu" in device["capabilities"]
    assert device.get("count") in (1, "all") or device.get("device_ids")
    assert env_of(gpu)["KGREC_DEVICE"] == "cuda"
    assert not nvidia_devices(cpu)
    assert "KGREC_DEVICE" not in env_of(cpu) or env_of(cpu)["KGREC_DEVICE"] != "cuda"


def test_connection_names_match_pipeline_connections(compose: dict[str, Any]):
    names = {key for key in common_env(compose) if key.startswith("AIRFLOW_CONN_")}
    expected = {f"AIRFLOW_CONN_{connections.WAREHOUSE.upper()}"}
    expected |= {f"AIRFLOW_CONN_{(connections.SPARQL_PREFIX + name).upper()}" for name in source_names()}
    assert names == expected


def test_sparql_connections_default_to_the_mirrors(compose: dict[str, Any], services: dict[str, Any]):
    env = env_of({"environment": common_env(compose)})
    for name in source_names():
        conn = json.loads(env[f"AIRFLOW_CONN_{(connections.SPARQL_PREFIX + name).upper()}"])
        mirror = f"{name}-mirror"
        assert mirror in services, f"source {name} has no mirror service"
        container_port = str(services[mirror]["ports"][0]).rsplit(":", 1)[1]
        assert conn["host"] == f"http://{mirror}:{container_port}/query"
        fields = connections.ConnectionFields(name, conn.get("conn_type"), conn.get("host"), conn.get("port"))
        assert connections.sparql_endpoint(fields) == conn["host"]


def test_warehouse_connection_points_at_the_warehouse_service(compose: dict[str, Any], services: dict[str, Any]):
    env = env_of({"environment": common_env(compose)})
    uri = urlsplit(env[f"AIRFLOW_CONN_{connections.WAREHOUSE.upper()}"])
    warehouse = env_of(services["warehouse"])
    assert uri.scheme in ("postgres", "postgresql")
    assert uri.hostname == "warehouse"
    assert uri.port == 5432
    assert uri.path.lstrip("/") == warehouse["POSTGRES_DB"]
    assert uri.username == warehouse["POSTGRES_USER"]
    assert uri.password == warehouse["POSTGRES_PASSWORD"], "the connection and the warehouse use the same password"
    metadata = env_of(services["postgres"])
    assert services["warehouse"]["image"].startswith("postgres:15")
    assert str(services["warehouse"]["environment"]["POSTGRES_PASSWORD"]) != str(
        services["postgres"]["environment"]["POSTGRES_PASSWORD"]), "the warehouse and Airflow have their own passwords"
    assert metadata["POSTGRES_DB"] != warehouse["POSTGRES_DB"], "Airflow's metadata is not in the warehouse"


def test_mirrors_are_optional(services: dict[str, Any]):
    for mirror in MIRRORS:
        assert services[mirror].get("profiles") == ["mirror"], mirror
    for name in AIRFLOW:
        depends = services[name].get("depends_on") or {}
        for mirror in MIRRORS:
            if mirror in depends:
                assert depends[mirror].get("required") is False, f"{name} must not need {mirror}"


def test_airflow_init_migrates_and_creates_the_kg_pool(services: dict[str, Any]):
    command = services["airflow-init"]["command"]
    script = command if isinstance(command, str) else " ".join(command)
    assert "airflow db migrate" in script
    assert re.search(r"airflow pools set kgrec_kg 1\b", script)
    for name in AIRFLOW:
        if name != "airflow-init":
            depends = services[name]["depends_on"]
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


def test_healthchecks_and_restarts(services: dict[str, Any]):
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
            assert service.get("restart") == "always", f"{name} does not restart"
    assert "/api/v2/monitor/health" in str(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "http://localhost:8974/health" in str(services["airflow-scheduler"]["healthcheck"]["test"])
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert "127.0.0.1:8080:8080" in services["airflow-apiserver"]["ports"]


def _kgrec_env(service_env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in service_env.items() if key.startswith("KGREC_") and "PASSWORD" not in key}


@pytest.mark.parametrize("name", AIRFLOW)
def test_kgrec_variables_are_valid_settings(services: dict[str, Any], name: str):
    env = _kgrec_env(env_of(services[name]))
    assert env["KGREC_PROFILE"] == "sample"
    settings = load_settings(environ=env)  # raises ConfigError on an unknown key or a bad value
    assert str(settings.home) == KGREC_HOME
    assert settings.train.queue == "gpu"


@pytest.mark.parametrize("name", ["airflow-worker", "airflow-worker-gpu"])
def test_settings_as_a_task_sees_them(services: dict[str, Any], name: str):
    """The settings a task builds from the KGREC_* variables and the connections (dags/kgrec_airflow.settings)."""
    env = env_of(services[name])
    fields = _connection_fields(env, parser=_parse_like_airflow)
    warehouse = fields.pop(connections.WAREHOUSE)
    found = connections.overrides(warehouse, {conn_id.removeprefix(connections.SPARQL_PREFIX): conn
                                              for conn_id, conn in fields.items()})
    settings = load_settings(environ=_kgrec_env(env), overrides=found)
    assert settings.warehouse.url.startswith("postgresql+psycopg://kgrec:")
    assert urlsplit(settings.warehouse.url).hostname == "warehouse"
    assert {src: source.endpoint for src, source in settings.sources.items()} == {
        src: f"http://{src}-mirror:7878/query" for src in source_names()}


@pytest.mark.skipif(find_spec("airflow") is None, reason="Airflow is not installed (pip install -e '.[airflow]')")
def test_airflow_parses_the_connections(compose: dict[str, Any], tmp_path: Path):
    """Airflow's own parser (in a subprocess with its own AIRFLOW_HOME) reads the connections as the test does."""
    env = env_of({"environment": common_env(compose)})
    conns = {key: value for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}
    script = (
        "import json, sys\n"
        "from airflow.sdk.definitions.connection import Connection\n"
        "out = {}\n"
        "for key, value in json.load(sys.stdin).items():\n"
        "    conn_id = key.removeprefix('AIRFLOW_CONN_').lower()\n"
        "    c = Connection.from_json(value, conn_id) if value.lstrip().startswith('{') else "
        "Connection.from_uri(value, conn_id)\n"
        "    out[conn_id] = [c.conn_type, c.host, c.port, c.login, c.password, c.schema, c.extra_dejson]\n"
        "print(json.dumps(out))\n"
    )
    isolated = {"AIRFLOW_HOME": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(conns), capture_output=True, text=True,
                            timeout=120, env=isolated, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = {conn_id: connections.ConnectionFields(conn_id, *values)
              for conn_id, values in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    assert parsed == _connection_fields(env, parser=_parse_like_airflow)


def _parse_like_airflow(conn_id: str, value: str) -> connections.ConnectionFields:
    """Airflow's reading of an AIRFLOW_CONN_* value: JSON, or a URI (postgresql:// becomes type postgres)."""
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        port = data.get("port")
        return connections.ConnectionFields(conn_id, data.get("conn_type"), data.get("host"),
                                            int(port) if port else None, data.get("login"), data.get("password"),
                                            data.get("schema"), data.get("extra") or {})
    parts = urlsplit(value)
    conn_type = "postgres" if parts.scheme == "postgresql" else parts.scheme.replace("-", "_")
    return connections.ConnectionFields(conn_id, conn_type, parts.hostname, parts.port, parts.username,
                                        parts.password, parts.path[1:], {})


def _connection_fields(env: dict[str, str], parser) -> dict[str, connections.ConnectionFields]:  # noqa: ANN001
    return {key.removeprefix("AIRFLOW_CONN_").lower(): parser(key.removeprefix("AIRFLOW_CONN_").lower(), value)
            for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line.removesuffix("\\").strip() if current else line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return lines


def test_dockerfile_installs_torch_first():
    steps = _instructions(DOCKERFILE.read_text())
    assert re.fullmatch(r"FROM apache/airflow:3\.3\.2(-python3\.11)?", steps[0]), steps[0]
    torch = [i for i, step in enumerate(steps) if re.search(r"\bpip install\b.*\btorch==2\.13\.0(\s|$)", step)]
    lock = [i for i, step in enumerate(steps) if step.startswith("RUN") and "requirements.lock" in step]
    project = [i for i, step in enumerate(steps) if re.search(r"\bpip install\b.*--no-deps", step)]
    assert torch and lock and project, steps
    assert torch[0] < lock[0] < project[0], "torch==2.13.0, then requirements.lock, then the project"
    copied = " ".join(step for step in steps if step.startswith("COPY"))
    for path in ("dags/", "pipeline/", "kg_build/", "models/", "sql/", "data/sample/", "pyproject.toml",
                 "requirements.lock"):
        assert path in copied, f"the image lacks {path}"


def test_dockerignore_keeps_local_state_out():
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for pattern in (".venv", "var", ".git", "__pycache__", "build", "*.egg-info", ".pytest_cache", ".env"):
        assert pattern in patterns, pattern


def _docker_compose() -> str | None:
    """Why `docker compose config` cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`docker compose version` failed: {exc}"
    if version.returncode != 0:
        return "the docker compose plugin is not installed (`docker compose version` failed)"
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path):
    reason = _docker_compose()
    if reason:
        pytest.skip(reason)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **compose_environment()}
    for profiles in ([], ["--profile", "mirror"]):
        result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), *profiles, "config", "-q"],
                                capture_output=True, text=True, timeout=60, env=env, cwd=PROJECT_ROOT, check=False)
        assert result.returncode == 0, result.stderr
    missing = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                             text=True, timeout=60, env={"PATH": env["PATH"], "HOME": str(tmp_path)},
                             cwd=PROJECT_ROOT, check=False)
    assert missing.returncode != 0, "compose must refuse to run without the passwords"
