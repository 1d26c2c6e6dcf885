"""Local SPARQL mirrors: oxigraph serving N-Triples on 127.0.0.1, as stand-ins for public endpoints.

``serve`` runs one in the foreground; ``start``/``stop``/``status`` run it in the background and
track it with a pid file under ``$KGREC_HOME/run``. The pid file records the process's start
time, so ``stop`` never signals a process it did not start (a reused pid is detected).

Files are loaded once into an oxigraph store keyed by their content (``$KGREC_HOME/mirrors``),
so a restart over the same files skips the load. Servers run read-only: a mirror answers
queries like the public endpoint and cannot be modified through it.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from pipeline.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOADED_MARKER = ".kgrec-loaded"
RDF_SUFFIXES = (".nt", ".nt.gz")


class MirrorError(RuntimeError):
    """A mirror cannot be started, stopped or queried; the message says why and what to do."""


@dataclass(frozen=True)
class MirrorSpec:
    name: str
    port: int
    files: tuple[Path, ...]

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}/query"


@dataclass(frozen=True)
class MirrorState:
    name: str
    state: str  # running | stopped | stale
    pid: int | None = None
    port: int | None = None
    endpoint: str | None = None
    files: tuple[str, ...] = ()
    started_at: str | None = None

    def describe(self) -> str:
        if self.state == "running":
            return f"{self.name}: running (pid {self.pid}) at {self.endpoint}, {len(self.files)} file(s)"
        if self.state == "stale":
            return f"{self.name}: not running (stale pid file for pid {self.pid})"
        return f"{self.name}: stopped"


# -- specs -------------------------------------------------------------------------------
def oxigraph_bin() -> str:
    candidate = Path(sys.executable).with_name("oxigraph")
    found = str(candidate) if candidate.exists() else shutil.which("oxigraph")
    if not found:
        raise MirrorError("the oxigraph server is not installed: run `make setup` (PyPI package `oxigraph`)")
    return found


def expand_files(patterns: Iterable[str | Path], base: Path = PROJECT_ROOT) -> tuple[Path, ...]:
    """Expand globs (relative to ``base``) into existing N-Triples files; fail on any that match nothing."""
    files: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        full = text if os.path.isabs(text) else str(base / text)
        matches = sorted(glob.glob(full)) if glob.has_magic(full) else [full]
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            raise MirrorError(f"no N-Triples file matches {text!r} (looked in {base})")
        for match in matches:
            if not match.endswith(RDF_SUFFIXES):
                raise MirrorError(f"{match}: mirrors serve N-Triples only (.nt or .nt.gz)")
            files.append(Path(match).resolve())
    return tuple(dict.fromkeys(files))


def specs_from_settings(settings: Settings, names: Sequence[str] = ()) -> list[MirrorSpec]:
    mirrored = {name: src.mirror for name, src in settings.sources.items() if src.mirror is not None}
    unknown = [n for n in names if n not in mirrored]
    if unknown:
        raise MirrorError(
            f"profile {settings.profile} has no mirror named {', '.join(unknown)} "
            f"(it has: {', '.join(mirrored) or 'none'})"
        )
    return [
        MirrorSpec(name=name, port=m.port, files=expand_files(m.files))
        for name, m in mirrored.items()
        if not names or name in names
    ]


# -- store -------------------------------------------------------------------------------
def prepare_store(files: Sequence[Path], stores_dir: Path) -> Path:
    """Load ``files`` into an oxigraph store keyed by their content; reuse it when already loaded."""
    digest = hashlib.sha256(oxigraph_version().encode())
    for path in sorted(files):
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    store = stores_dir / digest.hexdigest()[:16]
    if (store / LOADED_MARKER).exists():
        return store
    stores_dir.mkdir(parents=True, exist_ok=True)
    tmp = stores_dir / f".{store.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("loading %d file(s) into %s", len(files), store)
    cmd = [oxigraph_bin(), "load", "--location", str(tmp), "--file", *map(str, files)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MirrorError(f"oxigraph could not load {', '.join(map(str, files))}:\n{done.stderr.strip()}")
    (tmp / LOADED_MARKER).write_text(json.dumps([str(f) for f in files]))
    try:
        tmp.rename(store)
    except OSError:  # another process loaded the same files first
        shutil.rmtree(tmp, ignore_errors=True)
    return store


def oxigraph_version() -> str:
    out = subprocess.run([oxigraph_bin(), "--version"], capture_output=True, text=True)
    return out.stdout.strip()


# -- ports and queries -------------------------------------------------------------------
def check_port_free(port: int) -> None:
    """Raise unless a server could listen on 127.0.0.1:port (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise MirrorError(
                    f"port {port} on {HOST} is already in use by another process: stop it, or choose "
                    "another port (--port, or sources.<name>.mirror.port in the profile)"
                ) from None
            raise


def count_triples(endpoint: str, timeout: float = 30.0) -> int:
    """Answer of ``SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }`` at a SPARQL endpoint."""
    result = sparql_select(endpoint, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", timeout)
    return int(result[0]["n"])


def sparql_select(endpoint: str, query: str, timeout: float = 30.0) -> list[dict[str, str]]:
    url = f"{endpoint}?{urllib.parse.urlencode({'query': query})}"
    request = urllib.request.Request(url, headers={"Accept": "application/sparql-results+json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    return [{k: v["value"] for k, v in row.items()} for row in body["results"]["bindings"]]


def _ready(endpoint: str) -> bool:
    try:
        sparql_select(endpoint, "SELECT * WHERE { } LIMIT 1", timeout=2.0)
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, KeyError):
        return False


# -- foreground --------------------------------------------------------------------------
def serve(spec: MirrorSpec, home: Path) -> None:
    """Serve in the foreground until interrupted (replaces this process with oxigraph)."""
    check_port_free(spec.port)
    store = prepare_store(spec.files, home / "mirrors")
    print(f"mirror {spec.name}: {len(spec.files)} file(s) at {spec.endpoint} (Ctrl-C to stop)", flush=True)
    os.execv(oxigraph_bin(), _server_cmd(store, spec.port))


def _server_cmd(store: Path, port: int) -> list[str]:
    return [oxigraph_bin(), "serve-read-only", "--location", str(store), "--bind", f"{HOST}:{port}"]


# -- background --------------------------------------------------------------------------
def pid_file(home: Path, name: str) -> Path:
    return home / "run" / f"mirror-{name}.json"


def status(home: Path, name: str) -> MirrorState:
    path = pid_file(home, name)
    if not path.exists():
        return MirrorState(name=name, state="stopped")
    info = json.loads(path.read_text())
    state = "running" if _is_ours(info) else "stale"
    return MirrorState(
        name=name, state=state, pid=info["pid"], port=info["port"],
        endpoint=f"http://{HOST}:{info['port']}/query", files=tuple(info["files"]),
        started_at=info["started_at"],
    )


def all_statuses(home: Path) -> list[MirrorState]:
    run_dir = home / "run"
    names = sorted(p.stem.removeprefix("mirror-") for p in run_dir.glob("mirror-*.json"))
    return [status(home, name) for name in names]


def start(spec: MirrorSpec, home: Path, timeout: float = 120.0) -> tuple[MirrorState, bool]:
    """Start a mirror in the background; return its state and whether this call started it.

    A mirror already running with the same port and files is left as it is (started = False).
    """
    current = status(home, spec.name)
    wanted = tuple(map(str, spec.files))
    if current.state == "running":
        if current.port == spec.port and current.files == wanted:
            return current, False
        raise MirrorError(
            f"mirror {spec.name} is already running on port {current.port} with other files: "
            f"`kgrec mirror stop {spec.name}` first"
        )
    check_port_free(spec.port)
    store = prepare_store(spec.files, home / "mirrors")
    log_path = home / "logs" / f"mirror-{spec.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_fh:
        proc = subprocess.Popen(
            _server_cmd(store, spec.port), stdout=log_fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    info = {
        "name": spec.name, "pid": proc.pid, "port": spec.port, "files": list(wanted),
        "store": str(store), "create_time": psutil.Process(proc.pid).create_time(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "log": str(log_path),
    }
    path = pid_file(home, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(path)
    deadline = time.monotonic() + timeout
    while not _ready(spec.endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc.pid)
            path.unlink(missing_ok=True)
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise MirrorError(f"mirror {spec.name} did not start on port {spec.port}:\n" + "\n".join(tail))
        time.sleep(0.1)
    log.info("mirror %s started (pid %d) at %s", spec.name, proc.pid, spec.endpoint)
    return status(home, spec.name), True


def stop(home: Path, name: str, timeout: float = 10.0) -> str:
    """Stop a mirror started by :func:`start`; never signal anything else. Returns what happened."""
    path = pid_file(home, name)
    if not path.exists():
        return f"{name}: not running (no mirror named {name} was started by kgrec here)"
    info = json.loads(path.read_text())
    if not _is_ours(info):
        path.unlink(missing_ok=True)
        return f"{name}: not running (pid {info['pid']} is gone or is another program; stale pid file removed)"
    _terminate(info["pid"], timeout)
    path.unlink(missing_ok=True)
    return f"{name}: stopped (pid {info['pid']})"


def _is_ours(info: dict) -> bool:
    try:
        proc = psutil.Process(info["pid"])
        return (
            abs(proc.create_time() - info["create_time"]) < 0.01
            and proc.status() != psutil.STATUS_ZOMBIE
            and any("oxigraph" in part for part in proc.cmdline()[:2])
        )
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError):
        return False


def _terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL after ``timeout``; reap it if it is our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    try:
        os.waitpid(pid, 0)  # our child: reap it (a zombie, so this returns at once)
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    return True
