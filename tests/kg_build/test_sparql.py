"""The SPARQL client against a real oxigraph server, with faults injected by a real proxy."""

from __future__ import annotations

import time

import pytest

from kg_build.sparql import (
    BudgetExceeded,
    ClientSettings,
    EndpointUnavailable,
    QueryTimeout,
    SparqlClient,
    SparqlError,
)
from tests.faultproxy import FaultProxy

QUERY = """SELECT ?film ?label WHERE {
  ?film <http://www.wikidata.org/prop/direct/P57> ?d ; <http://www.w3.org/2000/01/rdf-schema#label> ?label .
} ORDER BY ?film LIMIT 40"""
FAST = ClientSettings(timeout_s=1.0, max_retries=3, backoff_s=0.05, backoff_max_s=0.2)


def _client(endpoint: str, settings: ClientSettings = FAST) -> SparqlClient:
    return SparqlClient(endpoint, user_agent="kgrec-tests (tests@example.org)", settings=settings, seed=1)


def test_a_plain_select_returns_bindings(sample_wikidata: str):
    result = _client(sample_wikidata).select(QUERY)
    assert len(result.bindings) == 40 and result.max_rows is None
    assert result.bindings[0]["film"]["type"] == "uri"


@pytest.mark.parametrize("fault", ["503", "500", "drop", "cut"])
def test_retryable_faults_are_retried_to_the_same_answer(sample_wikidata: str, fault: str):
    expected = _client(sample_wikidata).select(QUERY).bindings
    with FaultProxy(sample_wikidata, {0: fault, 1: fault}) as proxy:
        client = _client(proxy.endpoint)
        assert client.select(QUERY).bindings == expected
    assert proxy.actions() == [fault, fault, "ok"]
    assert (client.stats.sent, client.stats.retried, client.stats.failed) == (3, 2, 0)


@pytest.mark.parametrize("as_date", [False, True])
def test_retry_after_is_honoured_in_both_forms(sample_wikidata: str, as_date: bool):
    with FaultProxy(sample_wikidata, {0: "429"}, retry_after=2.0, retry_after_date=as_date) as proxy:
        client = _client(proxy.endpoint)
        began = time.monotonic()
        client.select(QUERY)
        waited = time.monotonic() - began
    assert waited >= 1.0 if as_date else waited >= 1.9  # an HTTP-date has whole-second resolution
    assert client.stats.by_reason == {"HTTP 429": 1}


def test_a_retry_after_beyond_the_limit_stops_the_run(sample_wikidata: str):
    settings = ClientSettings(timeout_s=1.0, max_retries=3, max_retry_after_s=5.0)
    with FaultProxy(sample_wikidata, {0: "429"}, retry_after=3600) as proxy:
        with pytest.raises(EndpointUnavailable, match="asked to retry after 3600s"):
            _client(proxy.endpoint, settings).select(QUERY)


def test_timeouts_raise_at_once_for_the_caller_to_split_or_are_retried(sample_wikidata: str):
    with FaultProxy(sample_wikidata, {0: "slow", 1: "slow"}, slow_s=1.6) as proxy:
        client = _client(proxy.endpoint)
        with pytest.raises(QueryTimeout):
            client.select(QUERY, retry_timeouts=False)
        assert len(client.select(QUERY, retry_timeouts=True).bindings) == 40
    assert client.stats.timeouts == 2


def test_exhausted_retries_name_the_endpoint_and_the_reason(sample_wikidata: str):
    with FaultProxy(sample_wikidata, lambda n, q: "503") as proxy:
        client = _client(proxy.endpoint)
        with pytest.raises(EndpointUnavailable, match=r"gave up after 4 attempts, last: HTTP 503"):
            client.select(QUERY)
    assert client.stats.sent == 4 and client.stats.failed == 1


def test_a_syntax_error_fails_fast_with_the_query_and_the_server_message(sample_wikidata: str):
    client = _client(sample_wikidata)
    with pytest.raises(SparqlError) as err:
        client.select("SELECT ?x WHERE { ?x ?y }")
    message = str(err.value)
    assert "refused the query (QueryBadFormed)" in message
    assert "SELECT ?x WHERE { ?x ?y }" in message  # the query
    assert "error" in message.lower() and len(message) > 120  # and what the server said
    assert client.stats.sent == 1  # no retry


def test_forbidden_fails_fast(sample_wikidata: str):
    with FaultProxy(sample_wikidata, {0: "403"}) as proxy:
        client = _client(proxy.endpoint)
        with pytest.raises(SparqlError, match=r"refused the query \(HTTP 403\): injected fault"):
            client.select(QUERY)
    assert proxy.actions() == ["403"]


def test_a_capped_result_is_reported(sample_wikidata: str):
    with FaultProxy(sample_wikidata, {0: "truncate"}) as proxy:
        result = _client(proxy.endpoint).select(QUERY)
    assert (len(result.bindings), result.max_rows) == (20, 20)


def test_budget_and_minimum_interval(sample_wikidata: str):
    client = _client(sample_wikidata, ClientSettings(min_interval_s=0.3, query_budget=3))
    began = time.monotonic()
    for _ in range(3):
        client.select(QUERY)
    assert time.monotonic() - began >= 0.6
    with pytest.raises(BudgetExceeded, match="query budget of 3 requests"):
        client.select(QUERY)


def test_the_user_agent_is_sent(sample_wikidata: str):
    with FaultProxy(sample_wikidata) as proxy:
        SparqlClient(proxy.endpoint, user_agent="kgrec/9.9 (ops@example.org)").select(QUERY)
    assert [entry.user_agent for entry in proxy.log] == ["kgrec/9.9 (ops@example.org)"]
