"""Kafka topics into the zones through the pipeline core, against a real Tansu broker."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors import ConnectorConfigError, get_connector
from connectors.kafka import KEY, TIMESTAMP, lag
from lakegate.columns import POSITION, RAW_TEXT, REASON, RULE, SOURCE
from pipelines import PipelineSpec, ingest
from tests.services.kafka import TansuBroker, create_topic, new_topic, produce
from zones import ZoneName, committed_positions, load_config, open_zone

pytestmark = pytest.mark.kafka

SCHEMA = {
    "type": "object",
    "required": ["user", "n"],
    "properties": {"user": {"type": "string"}, "n": {"type": "integer"}},
}


def _spec(broker: TansuBroker, topic: str, **config: Any) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "clicks",
            "domain": "web",
            "pattern": "EL",
            "connector": {
                "type": "kafka",
                "config": {"bootstrap_servers": broker.bootstrap, "topics": [topic], **config},
            },
        }
    )


def _good(n: int) -> bytes:
    return json.dumps({"user": f"u{n % 97}", "n": n, "tags": ["a", n % 3]}).encode()


def _table(zone: ZoneName) -> pl.DataFrame:
    return open_zone(zone, load_config()).read("web", "clicks")


def test_100k_messages_over_3_partitions_land_exactly_once(
    kafka_broker: TansuBroker, lakegate_home: Path
) -> None:
    topic = new_topic("bulk")
    create_topic(kafka_broker.bootstrap, topic, partitions=3)
    produced = produce(
        kafka_broker.bootstrap, topic, ((n % 3, str(n).encode(), _good(n)) for n in range(100_000))
    )
    spec = _spec(kafka_broker, topic)

    report = ingest(spec, run_id="r1")

    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (produced, produced, 0)
    raw = _table(ZoneName.RAW)
    assert raw.height == 100_000
    per_partition = raw.group_by(SOURCE).agg(pl.len(), pl.col(POSITION).n_unique().alias("distinct"))
    assert sorted(per_partition.rows()) == [
        (f"{topic}/{p}", 33_334 - (p > 0), 33_334 - (p > 0)) for p in range(3)
    ]
    assert raw.select(pl.struct(SOURCE, POSITION).n_unique()).item() == 100_000
    first = raw.filter(pl.col(SOURCE) == f"{topic}/1").sort(POSITION).row(0, named=True)
    assert (first["n"], first["tags"], first[KEY]) == ("1", '["a",1]', "1")  # fields as text, key kept
    assert raw[TIMESTAMP].null_count() == 0
    assert ingest(spec, run_id="r2").input_rows == 0, "a run with nothing new read something"


def test_poison_messages_are_quarantined_with_offsets_and_never_block(
    kafka_broker: TansuBroker, lakegate_home: Path
) -> None:
    topic = new_topic("poison")
    create_topic(kafka_broker.bootstrap, topic, partitions=3)
    rng = random.Random(9)
    poison = {
        "invalid_encoding": b'{"user": "\xff\xfe"}',
        "json_syntax": b'{"user": "u1", "n": ',
        "json_schema": b'{"user": "u1", "n": "not a number"}',
        "message_oversize": json.dumps({"user": "u1", "n": 1, "pad": "x" * 5000}).encode(),
    }
    messages: list[tuple[int, bytes | None, bytes | None]] = []
    expected_rules: dict[tuple[int, int], str] = {}
    offsets = [0, 0, 0]
    for n in range(20_000):
        partition = n % 3
        if rng.random() < 0.01:
            rule = rng.choice(sorted(poison))
            expected_rules[(partition, offsets[partition])] = rule
            messages.append((partition, f"key-{n}".encode(), poison[rule]))
        else:
            messages.append((partition, f"key-{n}".encode(), _good(n)))
        offsets[partition] += 1
    produced = produce(kafka_broker.bootstrap, topic, messages)
    spec = _spec(kafka_broker, topic, json_schema=SCHEMA, max_message_bytes=4096, batch_records=3000)

    report = ingest(spec, run_id="r1")

    raw, quarantine = _table(ZoneName.RAW), _table(ZoneName.QUARANTINE)
    assert 150 < len(expected_rules) < 260
    assert raw.height + quarantine.height == produced == report.input_rows
    found = {
        (int(source.rsplit("/", 1)[1]), position): rule
        for source, position, rule in quarantine.select(SOURCE, POSITION, RULE).iter_rows()
    }
    assert found == expected_rules
    sample = quarantine.filter(pl.col(RULE) == "invalid_encoding").row(0, named=True)
    envelope = json.loads(sample[RAW_TEXT])
    assert envelope["key"].startswith("key-") and "base64" in envelope["value"], "key and raw bytes kept"
    assert sample[REASON].startswith(f"{sample[SOURCE]} offset {sample[POSITION]}:")
    assert "not a number" not in " ".join(quarantine[REASON].to_list()), "a reason echoed a value"
    # Nothing blocked: every partition was read to its end, the positions in the zone say so.
    zones = [open_zone(ZoneName.RAW), open_zone(ZoneName.QUARANTINE)]
    sources = [f"{topic}/{p}" for p in range(3)]
    assert committed_positions(zones, spec.dataset(), sources) == {
        s: offsets[p] - 1 for p, s in enumerate(sources)
    }


def test_a_fresh_machine_resumes_from_the_offsets_in_the_zone(
    kafka_broker: TansuBroker, lakegate_home: Path
) -> None:
    topic = new_topic("resume")
    create_topic(kafka_broker.bootstrap, topic, partitions=3)
    produce(kafka_broker.bootstrap, topic, ((n % 3, None, _good(n)) for n in range(300)))
    spec = _spec(kafka_broker, topic, group_id=f"lakegate-{topic}")
    assert ingest(spec, run_id="r1").committed_rows == 300

    shutil.rmtree(lakegate_home / "dlt")  # another machine: no dlt state, no local offsets
    produce(kafka_broker.bootstrap, topic, ((n % 3, None, _good(n)) for n in range(300, 390)))
    second = ingest(spec, run_id="r2")

    assert second.input_rows == 90, "only the messages after the zone's offsets were read"
    raw = _table(ZoneName.RAW)
    assert raw.height == 390 and raw.select(pl.struct(SOURCE, POSITION).n_unique()).item() == 390
    connector = get_connector("kafka")
    resumed = connector.parse_config(
        {
            **spec.connector.config,
            "resume": committed_positions([open_zone(ZoneName.RAW)], spec.dataset(), []),
        }
    )
    assert sum(lag(resumed).values()) == 390, "without resume the lag counts from the beginning"
    zone_positions = committed_positions(
        [open_zone(ZoneName.RAW)], spec.dataset(), [f"{topic}/{p}" for p in range(3)]
    )
    caught_up = connector.parse_config({**spec.connector.config, "resume": zone_positions})
    assert lag(caught_up) == {f"{topic}/{p}": 0 for p in range(3)}


def test_max_records_bounds_a_run_and_the_next_continues(
    kafka_broker: TansuBroker, lakegate_home: Path
) -> None:
    topic = new_topic("bounded")
    create_topic(kafka_broker.bootstrap, topic, partitions=1)
    produce(kafka_broker.bootstrap, topic, ((0, None, _good(n)) for n in range(50)))
    spec = _spec(kafka_broker, topic, max_records=20, batch_records=7)
    assert [ingest(spec, run_id=f"r{i}").input_rows for i in range(4)] == [20, 20, 10, 0]
    assert sorted(_table(ZoneName.RAW)[POSITION].to_list()) == list(range(50))


def test_bytes_values_and_awkward_json_are_kept(kafka_broker: TansuBroker, lakegate_home: Path) -> None:
    topic = new_topic("awkward")
    create_topic(kafka_broker.bootstrap, topic, partitions=1)
    values = [
        b'{\n  "user": "pretty",\n  "n": 1\n}',  # a value spanning lines
        b'{"user": "typed", "n": "2"}',  # n changes type between messages
        b'{"user": null, "n": 3.5, "ok": true}',
        b"[1, 2]",  # JSON, but not an object
        b"",  # empty
    ]
    produce(
        kafka_broker.bootstrap, topic, ((0, b"\xff" if i == 0 else None, v) for i, v in enumerate(values))
    )
    report = ingest(_spec(kafka_broker, topic), run_id="r1")
    assert (report.committed_rows, report.quarantined_rows) == (3, 2)
    raw = _table(ZoneName.RAW).sort(POSITION)
    assert raw.select("user", "n", "ok").rows() == [
        ("pretty", "1", None),
        ("typed", "2", None),
        (None, "3.5", "true"),
    ]
    assert raw[KEY][0] == "\\xff"
    assert sorted(_table(ZoneName.QUARANTINE)[RULE].to_list()) == ["empty_message", "json_syntax"]

    binary = get_connector("kafka").build(
        {"bootstrap_servers": kafka_broker.bootstrap, "topics": [topic], "format": "bytes"}
    )
    tables = list(binary)
    assert tables[0]["value"].to_pylist() == values


def test_config_mistakes_are_one_line() -> None:
    connector = get_connector("kafka")
    with pytest.raises(ConnectorConfigError, match="exactly one of 'topics'"):
        connector.parse_config({"bootstrap_servers": "x:1"})
    with pytest.raises(ConnectorConfigError, match="not a valid JSON Schema"):
        connector.parse_config({"bootstrap_servers": "x:1", "topics": ["t"], "json_schema": {"type": 5}})
