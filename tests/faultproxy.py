"""A fault-injecting HTTP proxy in front of a real SPARQL endpoint (tests and benchmarks).

Each request gets an action, from a scripted schedule ``{request number: action}`` or, with
``fault_rate``, from a seeded random draw; everything else is forwarded untouched:

    ok         forward
    429        Too Many Requests with ``Retry-After`` (seconds, or an HTTP-date with ``retry_after_date``)
    503, 500   Service Unavailable / Internal Server Error
    403        Forbidden (not retryable)
    slow       wait ``slow_s`` (past the client's timeout), then forward
    drop       close the connection without answering
    cut        send the headers and half the body, then close
    truncate   Virtuoso-style cap: keep the first half of the rows, 200 OK with ``X-SPARQL-MaxRows``

``log`` records (number, action, query, User-Agent) for every request, so a test can see what was re-sent.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "503", "500", "slow", "drop", "cut", "truncate")


@dataclass(frozen=True)
class Entry:
    number: int
    action: str
    query: str
    user_agent: str


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        schedule: Mapping[int, str] | Callable[[int, str], str] | None = None,
        *,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 0,
        slow_s: float = 2.0,
        retry_after: float = 1.0,
        retry_after_date: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port, self.path = parts.hostname, parts.port, parts.path
        self.schedule, self.fault_rate, self.faults = schedule, fault_rate, faults
        self.slow_s, self.retry_after, self.retry_after_date, self.delay_s = slow_s, retry_after, retry_after_date, delay_s
        self.log: list[Entry] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def actions(self) -> list[str]:
        return [entry.action for entry in self.log]

    def _next_action(self, query: str, user_agent: str = "") -> tuple[int, str]:
        with self._lock:
            number = len(self.log)
            if callable(self.schedule):
                action = self.schedule(number, query)
            elif self.schedule is not None:
                action = self.schedule.get(number, "ok")
            elif self.fault_rate and self._rng.random() < self.fault_rate:
                action = self._rng.choice(self.faults)
            else:
                action = "ok"
            self.log.append(Entry(number, action, query, user_agent))
            return number, action

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                query = urllib.parse.parse_qs(body.decode()).get("query", [""])[0]
                _, action = proxy._next_action(query, self.headers.get("User-Agent", ""))
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                try:
                    self._act(action, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): nothing to answer

            def _act(self, action: str, body: bytes) -> None:
                if action == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if action in ("429", "503", "500", "403"):
                    headers = {}
                    if action == "429":
                        headers["Retry-After"] = (
                            email.utils.formatdate(time.time() + proxy.retry_after, usegmt=True)
                            if proxy.retry_after_date else f"{proxy.retry_after:g}"
                        )
                    self._send(int(action), b"injected fault", "text/plain", headers)
                    return
                if action == "slow":
                    time.sleep(proxy.slow_s)
                status, ctype, payload = self._forward(body)
                if action == "truncate" and status == 200:
                    data = json.loads(payload)
                    rows = data["results"]["bindings"]
                    keep = max(1, len(rows) // 2)
                    if len(rows) > 1:
                        data["results"]["bindings"] = rows[:keep]
                        self._send(200, json.dumps(data).encode(), ctype, {"X-SPARQL-MaxRows": str(keep)})
                        return
                if action == "cut":
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self._send(status, payload, ctype, {})

            def _forward(self, body: bytes) -> tuple[int, str, bytes]:
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request("POST", proxy.path, body=body, headers=headers)
                    response = conn.getresponse()
                    return response.status, response.getheader("Content-Type", ""), response.read()
                finally:
                    conn.close()

            def _send(self, status: int, payload: bytes, ctype: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
