"""A polite, reliable SPARQL client: SPARQLWrapper underneath, JSON results, POST.

- **Polite**: a descriptive User-Agent with a contact, a minimum interval between requests, a
  per-run request budget, ``Retry-After`` honoured (seconds or HTTP-date).
- **Reliable**: HTTP 429/500/502/503/504, dropped connections, truncated bodies and (unless the
  caller splits the batch instead, see :class:`QueryTimeout`) timeouts are retried with exponential
  backoff and full jitter. Errors that retrying cannot fix (400 syntax error, 401, 403, 404) fail
  at once, with the query and the server's message.
- **Truncation**: Virtuoso (DBpedia) caps result sets and says so with ``X-SPARQL-MaxRows`` on a
  200 OK; the header is returned in :attr:`Result.max_rows` so the caller pages instead of
  accepting a silently shortened result.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from SPARQLWrapper import JSON, POST, URLENCODED, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import (
    EndPointInternalError,
    EndPointNotFound,
    QueryBadFormed,
    SPARQLWrapperException,
    Unauthorized,
    URITooLong,
)

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
PING_QUERY = "SELECT * WHERE { } LIMIT 1"


class SparqlError(RuntimeError):
    """A query failed for good; the message holds the endpoint, the reason and the query."""


class QueryTimeout(SparqlError):
    """The endpoint did not answer in time (raised at once when the caller splits batches instead)."""


class EndpointUnavailable(SparqlError):
    """Retries are exhausted, or the endpoint asked to wait longer than allowed."""


class BudgetExceeded(SparqlError):
    """The run has sent its whole query budget; finished batches are cached for the next run."""


@dataclass(frozen=True)
class ClientSettings:
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_s: float = 1.0
    backoff_max_s: float = 120.0
    max_retry_after_s: float = 600.0
    min_interval_s: float = 0.0
    query_budget: int | None = None


@dataclass(frozen=True)
class Result:
    bindings: list[dict[str, Any]]
    max_rows: int | None  # X-SPARQL-MaxRows: the server capped this result at that many rows
    fetched_at: datetime


@dataclass
class ClientStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    timeouts: int = 0
    waited_s: float = 0.0
    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


class SparqlClient:
    """SELECT queries against one endpoint; safe to share between threads."""

    def __init__(
        self,
        endpoint: str,
        *,
        user_agent: str,
        settings: ClientSettings = ClientSettings(),
        seed: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.user_agent = user_agent
        self.settings = settings
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def select(self, query: str, *, retry_timeouts: bool = True) -> Result:
        """Run a SELECT and return its JSON bindings, retrying what is worth retrying."""
        cfg = self.settings
        for attempt in range(cfg.max_retries + 1):
            self._take_slot()
            try:
                return self._once(query)
            except _Retryable as exc:
                if isinstance(exc, _Timeout):
                    with self._lock:
                        self.stats.timeouts += 1
                    if not retry_timeouts:
                        raise QueryTimeout(f"{self.endpoint} timed out after {cfg.timeout_s:g}s") from None
                delay = self._delay(attempt, exc.retry_after)
                with self._lock:
                    self.stats.count(exc.reason)
                    if attempt == cfg.max_retries:
                        self.stats.failed += 1
                    else:
                        self.stats.retried += 1
                        self.stats.waited_s += delay
                if attempt == cfg.max_retries:
                    raise EndpointUnavailable(
                        f"{self.endpoint}: gave up after {cfg.max_retries + 1} attempts, last: {exc.reason}"
                    ) from None
                if exc.retry_after is not None and exc.retry_after > cfg.max_retry_after_s:
                    raise EndpointUnavailable(
                        f"{self.endpoint} asked to retry after {exc.retry_after:.0f}s, more than "
                        f"extract.max_retry_after_s={cfg.max_retry_after_s:g}; finished batches are cached"
                    ) from None
                log.info("%s: %s; retry %d/%d in %.1fs", self.endpoint, exc.reason, attempt + 1, cfg.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def check(self) -> None:
        """One quick request, no retries: raise EndpointUnavailable if the endpoint cannot answer."""
        try:
            self._once(PING_QUERY)
        except _Retryable as exc:
            raise EndpointUnavailable(f"{self.endpoint} does not answer: {exc.reason}") from None

    # -- one attempt ---------------------------------------------------------------------
    def _once(self, query: str) -> Result:
        wrapper = SPARQLWrapper(self.endpoint, agent=self.user_agent)
        wrapper.setMethod(POST)
        wrapper.setRequestMethod(URLENCODED)
        wrapper.setReturnFormat(JSON)
        wrapper.setOnlyConneg(True)
        wrapper.setTimeout(self.settings.timeout_s)  # type: ignore[arg-type]  # urllib takes float seconds
        wrapper.setQuery(query)
        try:
            response = wrapper.query()
            headers = response.response.headers  # http.client.HTTPMessage: case-insensitive
            body = response.response.read()
            data = json.loads(body)
            bindings = data["results"]["bindings"]
        except urllib.error.HTTPError as exc:
            if exc.code in RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After"))) from None
            raise SparqlError(self._refusal(f"HTTP {exc.code}", _body(exc), query)) from None
        except EndPointInternalError as exc:
            raise _Retryable("HTTP 500") from exc
        except (QueryBadFormed, Unauthorized, EndPointNotFound, URITooLong) as exc:
            raise SparqlError(self._refusal(type(exc).__name__, str(exc), query)) from None
        except TimeoutError as exc:
            raise _Timeout("timeout") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Timeout("timeout") from exc
            raise _Retryable(f"connection error: {exc.reason}") from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retryable(f"connection dropped: {type(exc).__name__}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise _Retryable(f"incomplete or malformed response: {type(exc).__name__}") from exc
        except SPARQLWrapperException as exc:
            raise SparqlError(self._refusal(type(exc).__name__, str(exc), query)) from None
        max_rows = headers.get("X-SPARQL-MaxRows")
        return Result(
            bindings=bindings,
            max_rows=int(max_rows) if max_rows and max_rows.strip().isdigit() else None,
            fetched_at=datetime.now(UTC),
        )

    def _refusal(self, what: str, message: str, query: str) -> str:
        with self._lock:
            self.stats.failed += 1
        return f"{self.endpoint} refused the query ({what}): {message.strip()[:2000]}\n--- query ---\n{query}"

    # -- politeness ----------------------------------------------------------------------
    def _take_slot(self) -> None:
        """Wait for the minimum interval since the previous request; charge the budget."""
        with self._lock:
            budget = self.settings.query_budget
            if budget is not None and self.stats.sent >= budget:
                raise BudgetExceeded(
                    f"{self.endpoint}: the query budget of {budget} requests for this run is spent; "
                    "re-run to continue (finished batches are cached)"
                )
            self.stats.sent += 1
            now = time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + self.settings.min_interval_s
        if start > now:
            time.sleep(start - now)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        cap = min(self.settings.backoff_max_s, self.settings.backoff_s * 2**attempt)
        with self._lock:
            return self._rng.uniform(0, cap)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Timeout(_Retryable):
    pass


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read().decode("utf-8", errors="replace")
    except Exception:  # noqa: BLE001 - the error body is only for the message
        return exc.reason or ""
