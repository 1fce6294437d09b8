"""Shared fixtures: every test gets its own LAKEGATE_HOME, DAGSTER_HOME and PII key."""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.services.gcs import gcs_server  # noqa: F401  (first: it sets gcsfs's env before gcsfs loads)
from tests.services.kafka import kafka_broker  # noqa: F401  (the session's Tansu broker fixture)
from tests.services.s3 import s3_server  # noqa: F401  (a moto server shared by the session)

# The server fixtures (markers postgres, mysql).
pytest_plugins = ["tests.services.postgres", "tests.services.mysql"]

PII_KEY = "test-pii-key-0123456789abcdef"

# Some tests put a pipeline folder into the checkout's dagster_project/defs/ or a package into connectors/
# (the code a Dagster run or `lakegate` subprocess loads). Under pytest-xdist (`make test` runs two
# workers) every other test would see it, so such tests are marked ``checkout_writes`` and hold this
# checkout's lock exclusively, every other test holds it shared.
CHECKOUT = Path(__file__).resolve().parents[1]
_LOCK = Path(tempfile.gettempdir()) / f"lakegate-checkout-{hashlib.sha256(bytes(CHECKOUT)).hexdigest()[:16]}"
_HELD = "LAKEGATE_TEST_CHECKOUT_LOCKED"  # set while held: a nested pytest (test_scaffold) must not wait
_holds: list[bool] = []  # this process's holds, True when exclusive


@contextmanager
def checkout_lock(exclusive: bool) -> Iterator[None]:
    """Hold the checkout lock (re-entrant in one process); a waiting writer goes before later readers."""
    if os.environ.get(_HELD) and not _holds:
        yield  # a pytest started by a test: its parent holds the lock
        return
    if _holds:
        if exclusive and not any(_holds):
            raise RuntimeError("a checkout_writes fixture ran inside a test not marked checkout_writes")
        yield
        return
    with open(f"{_LOCK}.gate", "a") as gate, open(f"{_LOCK}.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        _holds.append(exclusive)
        os.environ[_HELD] = "1"
        try:
            yield
        finally:
            _holds.pop()
            os.environ.pop(_HELD, None)


def require_checkout_writes() -> None:
    """Called before a test writes into the checkout: fails unless it holds the lock exclusively."""
    if not any(_holds):
        raise RuntimeError("a test writing into the checkout must be marked @pytest.mark.checkout_writes")


@pytest.fixture(autouse=True)
def _checkout(request: pytest.FixtureRequest) -> Iterator[None]:
    with checkout_lock(exclusive=request.node.get_closest_marker("checkout_writes") is not None):
        yield


# The longest modules that only read the checkout, longest first (measured with --durations).
LONG_READERS = (
    "tests/test_faults.py",
    "tests/crash/test_kill_runs.py",
    "tests/test_pipelines_e2e.py",
    "tests/test_demo_stream.py",
    "tests/test_store_errors_e2e.py",
    "tests/test_retention_upkeep.py",
    "tests/crash/test_kill_landing.py",
    "tests/zones/test_concurrent_runs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules run in this order (`make test` keeps it: ``--dist loadfile --no-loadscope-reorder``): those
    writing into the checkout first, as they run alone anyway and would otherwise wait for the other
    worker's long tests; then the long readers, longest first, so no worker is left with one at the end."""
    writers = {item.path for item in items if item.get_closest_marker("checkout_writes")}

    def rank(item: pytest.Item) -> int:
        if item.path in writers:
            return 0
        module = str(item.path).removeprefix(f"{CHECKOUT}/")
        return 1 + LONG_READERS.index(module) if module in LONG_READERS else 1 + len(LONG_READERS)

    items.sort(key=rank)  # stable: each module's tests stay together and in order


def isolate(mp: pytest.MonkeyPatch, root: Path) -> Path:
    """Point every lakegate and Dagster location at ``root``; returns LAKEGATE_HOME."""
    home = root / "home"
    mp.setenv("LAKEGATE_HOME", str(home))
    mp.setenv("DAGSTER_HOME", str(root / "dagster"))
    mp.setenv("LAKEGATE_PII_KEY", PII_KEY)
    mp.setenv("RUNTIME__LOG_LEVEL", "CRITICAL")  # what instance.prepare() sets, undone after the test
    mp.delenv("LAKEGATE_CONFIG", raising=False)
    for zone in ("LANDING", "RAW", "CURATED", "PII", "QUARANTINE"):
        mp.delenv(f"LAKEGATE_ZONE_{zone}_URL", raising=False)
    return home


@pytest.fixture
def lakegate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, isolated LAKEGATE_HOME for one test."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated LAKEGATE_HOME shared by the tests of one module."""
    with pytest.MonkeyPatch.context() as mp:
        yield isolate(mp, tmp_path_factory.mktemp("lakegate"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_unavailable(service: str, reason: str) -> None:
    """Fail under CI=true (a service test must never be skipped there); skip elsewhere."""
    message = f"{service} could not start: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A real S3 API (moto server) on a free port; credentials exported as AWS_* variables.

    moto runs in its own process: deltalake's object store holds the GIL while it waits on HTTP, so an
    in-process (threaded) moto server would never answer it.
    """
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, server, seconds=30)
    except RuntimeError as exc:
        server.kill()
        service_unavailable("moto S3 server", str(exc))
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",  # never fall back to a cloud metadata address
    }.items():
        monkeypatch.setenv(name, value)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)
    log.close()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with status {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no answer on port {port} after {seconds:.0f} s")
