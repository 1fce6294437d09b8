"""Guarantee 7 for streams: a ``lakegate run`` of a kafka pipeline killed with SIGKILL at a seeded moment;
the next run completes, and every offset of the topic is held once in raw + quarantine, none missing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import kill_and_recover
from kafka_inputs import BOOTSTRAP_ENV, kafka_pipeline, stream_scenario

from dagster_project.cli import DEFS_FOLDER
from tests.services.kafka import TansuBroker, new_topic

pytestmark = pytest.mark.kafka

MESSAGES = 30_000
SEEDS = (13, 5)  # kills after 1.0 s (extract) and 2.5 s (load: the recovery loads the pending package)


@pytest.fixture
def pipeline(
    kafka_broker: TansuBroker, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A kafka pipeline (its defs.yaml beside the shipped ones, removed afterwards) and its new topic."""
    monkeypatch.setenv(BOOTSTRAP_ENV, kafka_broker.bootstrap)
    name, topic = f"zz_kill_{uuid.uuid4().hex[:8]}", new_topic("kill")
    with kafka_pipeline(DEFS_FOLDER, name, topic):
        yield name, topic


@pytest.mark.checkout_writes
@pytest.mark.parametrize("seed", SEEDS)
def test_a_killed_stream_run_loses_and_repeats_no_offset(
    kafka_broker: TansuBroker, pipeline: tuple[str, str], tmp_path: Path, seed: int
) -> None:
    name, topic = pipeline
    scenario = stream_scenario(kafka_broker.bootstrap, name, topic, MESSAGES)
    outcome = kill_and_recover(scenario, seed, tmp_path)
    assert outcome.mismatches == [], f"killed in {outcome.phase} after {outcome.delay:.2f} s"
