"""Airflow connections as settings overrides (pipeline/connections.py): the warehouse URL, SPARQL endpoints, and
the overrides fed through load_settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pipeline.connections import WAREHOUSE, ConnectionFields, overrides, sparql_endpoint, warehouse_url
from pipeline.settings import PROJECT_ROOT, ConfigError, load_settings

SECRET = "p@ss/w:rd"


def wh(**fields) -> ConnectionFields:  # noqa: ANN003
    return ConnectionFields(WAREHOUSE, **fields)


def sparql(**fields) -> ConnectionFields:  # noqa: ANN003
    return ConnectionFields("kgrec_sparql_wikidata", **fields)


@pytest.mark.parametrize(("conn", "url"), [
    (wh(conn_type="postgres", host="warehouse", port=5432, login="user", password="pass", schema="db"),
     "postgresql+psycopg://user:pass@warehouse:5432/db"),
    (wh(conn_type="postgresql", host="10.0.0.5", port=6432, login="kgrec", password="pw", schema="kgrec"),
     "postgresql+psycopg://kgrec:pw@10.0.0.5:6432/kgrec"),
    (wh(conn_type="Postgres", host="warehouse", login="user", schema="db"),  # no port, no password
     "postgresql+psycopg://user@warehouse/db"),
    (wh(conn_type="postgres", host="warehouse", port=5432, schema="db"),  # no credentials (peer/trust auth)
     "postgresql+psycopg://warehouse:5432/db"),
    (wh(conn_type="postgres", host="warehouse", port=5432, login="user", password=SECRET, schema="db"),
     "postgresql+psycopg://user:p%40ss%2Fw%3Ard@warehouse:5432/db"),
    (wh(conn_type="postgres", host="h", schema="db", extra={"url": "postgresql+psycopg://a:b@other:1/x"}),
     "postgresql+psycopg://a:b@other:1/x"),  # extra.url wins over the fields
    (wh(conn_type="generic", extra={"url": "duckdb:///var/warehouse.duckdb"}), "duckdb:///var/warehouse.duckdb"),
    (wh(conn_type=None, extra={"url": "duckdb:////abs/path/wh.duckdb"}), "duckdb:////abs/path/wh.duckdb"),
], ids=["postgres", "postgresql-type", "no-port-no-password", "no-credentials", "quoted-password", "extra-url-wins",
        "duckdb", "duckdb-no-type"])
def test_warehouse_url(conn: ConnectionFields, url: str) -> None:
    assert warehouse_url(conn) == url


@pytest.mark.parametrize("password", [SECRET, "a b#c?d%e&f", "ünï@:/", "plain"])
def test_a_password_with_special_characters_comes_back_from_the_parsed_url(password: str) -> None:
    url = warehouse_url(wh(conn_type="postgres", host="warehouse", port=5432, login="us@er", password=password,
                           schema="kgrec"))
    parsed = make_url(url)
    assert (parsed.drivername, parsed.username, parsed.password) == ("postgresql+psycopg", "us@er", password)
    assert (parsed.host, parsed.port, parsed.database) == ("warehouse", 5432, "kgrec")


@pytest.mark.parametrize(("conn", "message"), [
    (wh(conn_type="postgres", port=5432, login="u", password="p", schema="db"), r"kgrec_warehouse: .* no host\b"),
    (wh(conn_type="postgres", host="warehouse", login="u", password="p"), r"kgrec_warehouse: .* no schema"),
    (wh(conn_type="postgres", login="u"), r"kgrec_warehouse: .* no host or schema"),
    (wh(conn_type="mysql", host="warehouse", schema="db"), r"kgrec_warehouse: type 'mysql' needs extra.url"),
    (wh(conn_type="generic"), r"kgrec_warehouse: type 'generic' needs extra.url"),
    (wh(conn_type=None, host="warehouse", schema="db"), r"kgrec_warehouse: type None needs extra.url"),
], ids=["no-host", "no-schema", "neither", "mysql", "generic", "no-type"])
def test_warehouse_url_refuses_an_incomplete_connection(conn: ConnectionFields, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        warehouse_url(conn)


@pytest.mark.parametrize(("conn", "endpoint"), [
    (sparql(conn_type="http", host="ignored", extra={"endpoint": "https://query.wikidata.org/sparql"}),
     "https://query.wikidata.org/sparql"),
    (sparql(conn_type="http", host="https://query.wikidata.org/sparql", port=8080, schema="ignored"),
     "https://query.wikidata.org/sparql"),
    (sparql(conn_type="http", host="wdqs", port=9999, schema="bigdata/namespace/wdq/sparql"),
     "http://wdqs:9999/bigdata/namespace/wdq/sparql"),
    (sparql(conn_type="https", host="wdqs.example.org", port=443, schema="sparql"), "https://wdqs.example.org/sparql"),
    (sparql(conn_type="http", host="wdqs.example.org", port=443, schema="/sparql/"),
     "https://wdqs.example.org/sparql"),
    (sparql(conn_type="https", host="wdqs.example.org", port=8443, schema="sparql"),
     "https://wdqs.example.org:8443/sparql"),
    (sparql(conn_type="https", host="wdqs.example.org", schema="sparql"), "https://wdqs.example.org/sparql"),
    (sparql(conn_type="http", host="mirror", port=80, schema="query"), "http://mirror/query"),
    (sparql(conn_type="http", host="127.0.0.1", port=7878, schema="query"), "http://127.0.0.1:7878/query"),
], ids=["extra-endpoint", "host-is-url", "http-port-path", "https-443", "http-443-is-https", "https-other-port",
        "https-no-port", "http-80", "loopback"])
def test_sparql_endpoint(conn: ConnectionFields, endpoint: str) -> None:
    assert sparql_endpoint(conn) == endpoint


@pytest.mark.parametrize("conn", [sparql(conn_type="http"), sparql(conn_type="https", port=443, schema="sparql"),
                                  sparql(conn_type="http", host="", extra={"endpoint": ""})])
def test_sparql_endpoint_without_host_names_the_connection(conn: ConnectionFields) -> None:
    with pytest.raises(ConfigError, match="connection kgrec_sparql_wikidata: no host and no extra.endpoint"):
        sparql_endpoint(conn)


def test_overrides_of_no_connection_are_empty() -> None:
    assert overrides(None, {}) == {}


def test_overrides_feed_load_settings_deep_merged_and_the_password_is_redacted(tmp_path: Path) -> None:
    warehouse = wh(conn_type="postgres", host="warehouse", port=5432, login="kgrec", password=SECRET, schema="kgrec")
    wikidata = sparql(conn_type="http", host="127.0.0.1", port=17878, schema="query")
    found = overrides(warehouse, {"wikidata": wikidata})
    assert found == {"warehouse": {"url": "postgresql+psycopg://kgrec:p%40ss%2Fw%3Ard@warehouse:5432/kgrec"},
                     "sources": {"wikidata": {"endpoint": "http://127.0.0.1:17878/query"}}}

    settings = load_settings("sample", overrides={"home": str(tmp_path), **found}, environ={})
    assert settings.warehouse.url == warehouse_url(warehouse)
    assert make_url(settings.warehouse.url).password == SECRET
    assert settings.warehouse.retention_days == 30  # the rest of [warehouse] keeps its defaults
    source = settings.sources["wikidata"]
    assert source.endpoint == "http://127.0.0.1:17878/query"
    assert source.kind == "wikidata"  # deep merge: the profile's kind and mirror are kept
    assert source.mirror is not None and source.mirror.files == ["data/sample/mirror/wikidata.nt"]
    assert settings.sources["dbpedia"].endpoint == "http://127.0.0.1:7879/query"  # no connection: the profile's

    redacted = settings.redacted()
    assert redacted["warehouse"]["url"] == "postgresql+psycopg://kgrec:***@warehouse:5432/kgrec"
    dumped = json.dumps(redacted)
    assert "p%40ss" not in dumped and SECRET not in dumped
    assert redacted["sources"]["wikidata"]["endpoint"] == "http://127.0.0.1:17878/query"


def test_overrides_beat_the_environment_and_a_duckdb_connection_is_used_as_is(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    env = {"KGREC_WAREHOUSE__URL": "duckdb:///elsewhere.duckdb",
           "KGREC_SOURCES__WIKIDATA__ENDPOINT": "http://127.0.0.1:1/query"}
    found = overrides(wh(conn_type="generic", extra={"url": url}),
                      {"wikidata": sparql(extra={"endpoint": "http://localhost:7000/sparql"})})
    settings = load_settings("sample", overrides=found, environ=env)
    assert settings.warehouse.url == url
    assert settings.sources["wikidata"].endpoint == "http://localhost:7000/sparql"
    assert settings.redacted()["warehouse"]["url"] == url
    assert settings.home == PROJECT_ROOT / "var"


def test_a_public_endpoint_from_a_connection_still_needs_a_contact() -> None:
    found = overrides(None, {"wikidata": sparql(conn_type="https", host="query.wikidata.org", schema="sparql")})
    with pytest.raises(ConfigError, match="contact"):
        load_settings("sample", overrides=found, environ={})
    settings = load_settings("sample", overrides={**found, "contact": "ops@example.org"}, environ={})
    assert settings.sources["wikidata"].endpoint == "https://query.wikidata.org/sparql"
    assert not settings.sources["wikidata"].is_local


def test_a_bad_sparql_connection_fails_the_overrides() -> None:
    with pytest.raises(ConfigError, match="kgrec_sparql_dbpedia"):
        overrides(None, {"dbpedia": ConnectionFields("kgrec_sparql_dbpedia", conn_type="http")})
