"""A real MariaDB server for the ``sql`` connector's MySQL/MariaDB tests (marker ``mysql``).

Debian's ``mariadb-server`` (``.ci/run`` installs it) is started once per test session on a throwaway data
directory and a free port; each test gets its own database through :func:`mysql_database`. Under
``CI=true`` a server that cannot start fails the tests instead of skipping them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from uuid import uuid4

import pymysql
import pytest

from tests.conftest import free_port, service_unavailable

USER = "lakegate"
PASSWORD = "s3cr%t/pw"  # needs percent-encoding in a URL: the tests check it is never echoed


@dataclass(frozen=True)
class MysqlServer:
    """A running server: root by its socket, ``lakegate`` by TCP with a password."""

    host: str
    port: int
    socket: str

    def url(self, database: str, *, password: str = PASSWORD) -> str:
        """The SQLAlchemy URL of ``database`` for the ``lakegate`` user (pymysql driver)."""
        return f"mysql+pymysql://{USER}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"

    def admin(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)


@contextmanager
def running_mariadb() -> Iterator[MysqlServer]:
    """Start a throwaway server; killed and removed afterwards."""
    if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
        service_unavailable(
            "MariaDB", "mariadbd/mariadb-install-db not on PATH (apt-get install mariadb-server)"
        )
    root = Path(tempfile.mkdtemp(prefix="lakegate-mariadb-"))
    data, socket = root / "data", str(root / "sock")
    done = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-test-db",
         "--auth-root-authentication-method=socket"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode:
        service_unavailable("MariaDB", f"mariadb-install-db failed: {done.stderr.strip()[-300:]}")
    port = free_port()
    log = (root / "log").open("w")
    process = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={socket}", f"--pid-file={root / 'pid'}", "--skip-log-bin",
         "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=32M"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = MysqlServer(host="127.0.0.1", port=port, socket=socket)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with closing(server.admin()) as conn, conn.cursor() as cur:
                    cur.execute(f"CREATE USER '{USER}'@'%%' IDENTIFIED BY %s", (PASSWORD,))
                break
            except pymysql.err.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = (root / "log").read_text()[-300:]
                    service_unavailable("MariaDB", f"mariadbd did not start: {text}")
                time.sleep(0.2)
        yield server
    finally:
        process.kill()
        process.wait(30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[MysqlServer]:
    """MariaDB, started once per session."""
    with running_mariadb() as server:
        yield server


@pytest.fixture
def mysql_database(mysql_server: MysqlServer) -> Iterator[str]:
    """A fresh database the ``lakegate`` user owns; dropped afterwards."""
    name = f"db_{uuid4().hex[:10]}"
    with closing(mysql_server.admin()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"GRANT ALL ON {name}.* TO '{USER}'@'%'")
    yield name
    with closing(mysql_server.admin()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")


@pytest.fixture
def mysql_exec(mysql_server: MysqlServer, mysql_database: str) -> Callable[[str], None]:
    """Run SQL in the test database as root (autocommit)."""

    def run(sql: str) -> None:
        with closing(mysql_server.admin()) as conn, conn.cursor() as cur:
            cur.execute(f"USE {mysql_database}")
            cur.execute(sql)

    return run
