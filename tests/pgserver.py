"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` into a temporary folder.

Uses the machine's PostgreSQL binaries (``/usr/lib/postgresql/<N>/bin`` or ``$PG_BIN``; CI installs the Debian
``postgresql`` package when they are missing). As root, the server runs as the ``postgres`` system user (PostgreSQL
refuses to run as root). It listens on 127.0.0.1 on a free port with trust authentication and is stopped, and its
folder removed, on exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SUPERUSER = "kgrec"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def binaries() -> Path:
    found = [os.environ["PG_BIN"]] if os.environ.get("PG_BIN") else sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    for folder in reversed(found):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or "
                              "$PG_BIN: install the Debian package `postgresql`")


class PostgresServer:
    """``with PostgresServer() as pg: pg.url()`` gives a SQLAlchemy URL of a fresh database on a running server."""

    def __init__(self) -> None:
        self.bin = binaries()
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="kgrec-pg-"))
        self.data = self.folder / "data"
        self._as = []  # a command prefix to run as the postgres user when we are root
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def __enter__(self) -> PostgresServer:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=50 -c shared_buffers=256MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return self.url(name)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        done = subprocess.run([*self._as, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        if check and done.returncode:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
