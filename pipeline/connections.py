"""Airflow connections as settings overrides, without importing Airflow (the DAGs pass the fields in).

Two kinds of connection, both optional (``KGREC_*`` variables and the profile apply where none is defined):

- ``kgrec_warehouse``: the warehouse. A ``postgres`` connection (host, port, login, password, schema = the
  database) becomes ``postgresql+psycopg://…``; any type with ``extra.url`` uses that SQLAlchemy URL as it is
  (``duckdb:///path/warehouse.duckdb``).
- ``kgrec_sparql_<source>`` (``kgrec_sparql_wikidata``, ``kgrec_sparql_dbpedia``, …): a source's endpoint, from
  ``extra.endpoint``, else a ``host`` holding the whole URL, else ``<http|https>://host[:port]/<schema>``.

Defined as ``AIRFLOW_CONN_KGREC_WAREHOUSE='postgresql://kgrec:SECRET@warehouse:5432/kgrec'`` or in the UI or a
secrets backend; nothing secret lives in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.settings import ConfigError

WAREHOUSE = "kgrec_warehouse"
SPARQL_PREFIX = "kgrec_sparql_"
POSTGRES_TYPES = ("postgres", "postgresql")


@dataclass(frozen=True)
class ConnectionFields:
    """The fields of an Airflow connection that matter here."""

    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def warehouse_url(conn: ConnectionFields) -> str:
    """The SQLAlchemy URL of a ``kgrec_warehouse`` connection."""
    if conn.extra.get("url"):
        return str(conn.extra["url"])
    if (conn.conn_type or "").lower() not in POSTGRES_TYPES:
        raise ConfigError(f"connection {conn.conn_id}: type {conn.conn_type!r} needs extra.url (a SQLAlchemy URL "
                          "such as duckdb:///var/warehouse.duckdb); a postgres connection needs only its fields")
    missing = [name for name in ("host", "schema") if not getattr(conn, name)]
    if missing:
        raise ConfigError(f"connection {conn.conn_id}: the postgres connection has no {' or '.join(missing)} "
                          "(schema is the database name)")
    auth = quote(conn.login or "", safe="")
    if conn.password:
        auth += ":" + quote(conn.password, safe="")
    port = f":{conn.port}" if conn.port else ""
    return f"postgresql+psycopg://{auth}{'@' if auth else ''}{conn.host}{port}/{conn.schema}"


def sparql_endpoint(conn: ConnectionFields) -> str:
    """The endpoint URL of a ``kgrec_sparql_<source>`` connection."""
    if conn.extra.get("endpoint"):
        return str(conn.extra["endpoint"])
    host = conn.host or ""
    if "://" in host:
        return host
    if not host:
        raise ConfigError(f"connection {conn.conn_id}: no host and no extra.endpoint: give the endpoint URL")
    kind = (conn.conn_type or "").lower()
    scheme = "https" if kind == "https" or conn.port == 443 else "http"
    port = f":{conn.port}" if conn.port and conn.port not in (80, 443) else ""
    path = (conn.schema or "").strip("/")
    url = f"{scheme}://{host}{port}/{path}"
    if not urlsplit(url).hostname:
        raise ConfigError(f"connection {conn.conn_id}: {url!r} is not an endpoint URL")
    return url


def overrides(warehouse: ConnectionFields | None, sparql: dict[str, ConnectionFields]) -> dict[str, Any]:
    """Settings overrides from the connections found: ``{"warehouse": {"url": …}, "sources": {name: …}}``."""
    out: dict[str, Any] = {}
    if warehouse is not None:
        out["warehouse"] = {"url": warehouse_url(warehouse)}
    if sparql:
        out["sources"] = {name: {"endpoint": sparql_endpoint(conn)} for name, conn in sparql.items()}
    return out
