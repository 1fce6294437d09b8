"""A real PostgreSQL 15 with ``wal_level=logical`` for the replication tests (marker ``postgres``).

The server runs as the ``postgres`` user (PostgreSQL refuses root) on a throwaway data directory and a
free port, once per test session; each test gets its own database through :func:`pg_database`.
Under ``CI=true`` a server that cannot start fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import psycopg2
import pytest

from tests.conftest import free_port, service_unavailable

ROLE = "lakegate"
PASSWORD = "s3cr%t/pw"  # needs percent-encoding in a DSN: the tests check it is never echoed


@dataclass(frozen=True)
class PgServer:
    """A running server: superuser access by socket-free TCP, and the replication role."""

    host: str
    port: int

    def dsn(self, database: str, *, user: str = ROLE, password: str = PASSWORD) -> str:
        """A key/value DSN (libpq quoting) for ``database``."""
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        return f"host={self.host} port={self.port} dbname={database} user={user} password='{quoted}'"

    def admin(self, database: str = "postgres") -> psycopg2.extensions.connection:
        """An autocommit superuser connection."""
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=database, user="postgres")
        conn.autocommit = True
        return conn


def _run_as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    command = list(args) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def running_postgres(wal_level: str = "logical") -> Iterator[PgServer]:
    """Start a throwaway server with ``wal_level``; stopped (immediately) and removed afterwards."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        service_unavailable("PostgreSQL", "initdb/pg_ctl not on PATH")
    root = Path(tempfile.mkdtemp(prefix="lakegate-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    done = _run_as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    if done.returncode:
        service_unavailable("PostgreSQL", f"initdb failed: {done.stderr.strip()[-300:]}")
    # Password auth for the role (the tests check bad credentials); the superuser trusts local TCP.
    (data / "pg_hba.conf").write_text(
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host replication all 127.0.0.1/32 scram-sha-256\n"
    )
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c wal_level={wal_level} "
        "-c max_replication_slots=40 -c max_wal_senders=40 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=100"
    )
    log = root / "log"
    started = _run_as_postgres("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    if started.returncode:
        text = log.read_text() if log.exists() else ""
        service_unavailable("PostgreSQL", f"pg_ctl start failed: {(started.stderr + text).strip()[-300:]}")
    server = PgServer(host="127.0.0.1", port=port)
    try:
        with closing(server.admin()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {ROLE} LOGIN REPLICATION PASSWORD %s", (PASSWORD,))
        yield server
    finally:
        _run_as_postgres("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """PostgreSQL 15 with logical replication, started once per session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def pg_replica_server() -> Iterator[PgServer]:
    """A server with ``wal_level=replica``: what a source not set up for logical replication looks like."""
    with running_postgres("replica") as server:
        yield server


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh database owned by the replication role; its slots are dropped afterwards."""
    name = f"db_{uuid4().hex[:10]}"
    admin = pg_server.admin()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
    yield name
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE database = %s AND active_pid IS NOT NULL",
            (name,),
        )
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
            (name,),
        )
        cur.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def pg_exec(pg_server: PgServer, pg_database: str) -> Callable[..., list[tuple[object, ...]]]:
    """Run SQL in the test database as the replication role (autocommit); returns fetched rows."""

    def run(sql: str, params: object = None) -> list[tuple[object, ...]]:
        with closing(psycopg2.connect(pg_server.dsn(pg_database))) as conn, conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    return run
