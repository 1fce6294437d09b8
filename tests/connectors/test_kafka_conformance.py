"""The kafka connector passes the streaming conformance kit against a real Tansu broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.testing import StreamingTests
from tests.services.kafka import TansuBroker, create_topic, new_topic, produce

pytestmark = pytest.mark.kafka


class TestKafkaConformance(StreamingTests):
    connector_name = "kafka"
    max_run_seconds = 30.0

    @pytest.fixture(autouse=True)
    def _broker(self, kafka_broker: TansuBroker) -> None:
        self.bootstrap = kafka_broker.bootstrap

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        topic = new_topic("conformance")
        create_topic(self.bootstrap, topic, partitions=2)
        produce(self.bootstrap, topic, _messages(0, 20))
        return {"bootstrap_servers": self.bootstrap, "topics": [topic]}

    def produce(self, raw_config: dict[str, Any], tmp_path: Path, count: int) -> dict[str, Any]:
        produce(self.bootstrap, raw_config["topics"][0], _messages(1000, count))
        return raw_config


def _messages(first: int, count: int) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(i % 2, str(i).encode(), json.dumps({"n": i}).encode()) for i in range(first, first + count)]
