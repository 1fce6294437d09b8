"""A Kafka scenario for the kill harness: a topic of JSON messages (some poison) over 3 partitions, read
by a ``kafka`` pipeline whose defs.yaml names the broker through an environment variable.

The ledger is the stream's own: every ``(topic/partition, offset)`` produced appears exactly once across
raw and quarantine, none missing, and each zone's audit log matches its Delta history.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import polars as pl
from harness import Expected, Scenario, audit_matches_history

from lakegate.columns import POSITION, SOURCE
from tests.conftest import require_checkout_writes
from tests.services.kafka import create_topic, produce
from zones import ZoneName, open_zone

DOMAIN = "stream"
PARTITIONS = 3
BOOTSTRAP_ENV = "LAKEGATE_TEST_KAFKA_BOOTSTRAP"

DEFS = """\
type: dagster_project.components.IngestionPipeline
attributes:
  name: {name}
  domain: {domain}
  description: Kill-harness stream ({topic}).
  connector:
    type: kafka
    config:
      bootstrap_servers: {{env: {env}}}
      topics: [{topic}]
      batch_records: 5000
      connect_seconds: {connect_seconds}
  pattern: EL
  primary_key: [n]
  columns:
    n: {{type: int64, description: "Message number"}}
    user: {{type: string, description: "User id"}}
  trigger: {{sensor: stream}}
"""


def message(n: int) -> bytes:
    """Message ``n``: a JSON object, except every 997th (not JSON) and every 1499th (empty)."""
    if n % 997 == 0:
        return b"not json " + str(n).encode()
    if n % 1499 == 0:
        return b""
    return json.dumps({"n": n, "user": f"u{n % 97}"}).encode()


def topic_input(bootstrap: str, topic: str, count: int) -> Expected:
    """Create ``topic`` and publish ``count`` messages round-robin over its partitions."""
    create_topic(bootstrap, topic, PARTITIONS)
    produced = produce(
        bootstrap, topic, ((n % PARTITIONS, str(n).encode(), message(n)) for n in range(count))
    )
    return Expected(input_rows=produced)


@contextmanager
def kafka_pipeline(defs_folder: Path, name: str, topic: str, connect_seconds: float = 20) -> Iterator[Path]:
    """The pipeline's defs.yaml in ``defs_folder/<name>``, removed afterwards."""
    require_checkout_writes()
    folder = defs_folder / name
    folder.mkdir()
    try:
        (folder / "defs.yaml").write_text(
            DEFS.format(
                name=name, domain=DOMAIN, topic=topic, env=BOOTSTRAP_ENV, connect_seconds=connect_seconds
            )
        )
        yield folder
    finally:
        shutil.rmtree(folder)


def stream_scenario(bootstrap: str, name: str, topic: str, count: int) -> Scenario:
    """The kill scenario of pipeline ``name`` reading ``count`` messages of ``topic``."""
    return Scenario(
        pipeline=name,
        domain=DOMAIN,
        dataset=name,
        pattern="EL",
        key=("n",),
        write_input=partial(topic_input, bootstrap, topic, count),
        kill_window=(0.0, 4.0),
        timeout=60.0,
        ledger=partial(stream_ledger, topic),
    )


def stream_ledger(topic: str, scenario: Scenario, expected: Expected) -> list[str]:
    """Every offset of every partition of ``topic`` once across raw and quarantine, none missing; each
    zone's audit log matches its Delta history."""
    frames = [
        open_zone(zone).read(scenario.domain, scenario.dataset).select(SOURCE, POSITION)
        for zone in (ZoneName.RAW, ZoneName.QUARANTINE)
    ]
    held = pl.concat([f for f in frames if f.height]) if any(f.height for f in frames) else pl.DataFrame()
    problems = []
    repeated = held.filter(held.is_duplicated()) if held.height else held
    if repeated.height:
        problems.append(f"{repeated.height} rows share a (source, position), e.g. {repeated.row(0)}")
    want = {
        (f"{topic}/{p}", offset)
        for p in range(PARTITIONS)
        for offset in range(len(range(p, expected.input_rows, PARTITIONS)))
    }
    got = set(held.iter_rows()) if held.height else set()
    if got != want:
        problems.append(f"{len(want - got)} offset(s) missing, {len(got - want)} unexpected")
    return problems + audit_matches_history(scenario)
