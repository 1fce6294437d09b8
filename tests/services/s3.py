"""A real S3 API (moto server) shared by a session, for tests marked ``s3`` that outlive one test (the
per-test server is ``s3_endpoint`` in ``tests/conftest.py``).

moto runs in its own process: deltalake's object store holds the GIL while it waits on HTTP, so an
in-process (threaded) moto server would never answer it. Under ``CI=true`` a server that cannot start
fails the test instead of skipping it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


class MotoServer:
    """One ``moto_server`` process on a free port; ``url`` is its endpoint (any key/secret works)."""

    def __init__(self, log: Path) -> None:
        from tests.conftest import free_port

        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from tests.conftest import _wait_for_port

        moto = Path(sys.executable).with_name("moto_server")
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [str(moto), "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            _wait_for_port(self.port, self.process, seconds=30)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto S3 server shared by the session (tests isolate themselves by bucket)."""
    from tests.conftest import service_unavailable

    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable("moto S3 server", str(exc))
    yield server
    server.stop()
