"""The ``kafka`` connector: topics micro-batched as Arrow tables, each run bounded, each offset once.

``_lakegate_source`` is ``topic/partition`` and ``_lakegate_position`` the offset. The zone destination
commits the highest offset of each partition with the data (``positions``) and lakegate passes them back
in ``resume``; without them (plain dlt use, the conformance kit) the offsets in the dlt resource state,
saved with each load package, are the fallback. Consumer-group offsets are written for lag tools only.
See README.md beside this module for operations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dlt
import pyarrow as pa
from dlt.extract import DltResource

from connectors._contract import Connector, Kind
from connectors.kafka._consume import (
    KafkaUnavailableError,
    commit_group,
    consumer,
    high_water,
    partitions,
    read,
    seek,
    source_of,
)
from connectors.kafka._decode import HEADERS, KEY, TIMESTAMP, VALUE, Decoder, raw_record
from connectors.kafka._prefetch import read_ahead
from connectors.kafka.config import KafkaConfig

__all__ = [
    "HEADERS",
    "KEY",
    "TIMESTAMP",
    "VALUE",
    "KafkaConfig",
    "KafkaUnavailableError",
    "connector",
    "kafka_resource",
    "lag",
    "raw_record",
    "topic_partitions",
]

log = logging.getLogger("lakegate.connectors.kafka")


def kafka_resource(config: KafkaConfig, name: str = "kafka") -> DltResource:
    """A dlt resource reading each partition from after its committed offset up to where it stood at
    the start of the run (or ``max_records`` / ``max_seconds``), as data and reject tables."""

    @dlt.resource(name=name, write_disposition="append")
    def messages() -> Iterator[pa.Table]:
        offsets: dict[str, int] = dlt.current.resource_state().setdefault("offsets", {})
        decoder = Decoder(config)
        with consumer(config) as client:
            tps = partitions(client, config)
            commit_group(client, config, tps)  # what the zones hold, now that they hold it
            seek(client, config, tps, {**offsets, **config.resume})  # the zone's record wins
            read_count = 0
            # The next batch is fetched while this one is decoded and written; the reader thread is
            # stopped before the consumer closes.
            for batch in read_ahead(read(client, config, tps)):
                yield from decoder.decode(batch)
                read_count += len(batch)
                # Saved by dlt with the load package of these tables: the fallback when no zone record.
                # Offsets ascend within a partition, so the last one of each source is its highest.
                offsets.update(dict(zip(batch.sources, batch.offsets, strict=True)))
            log.info("kafka: %d message(s) read from %d partition(s)", read_count, len(tps))

    return messages


def topic_partitions(config: KafkaConfig) -> list[str]:
    """The ``topic/partition`` ids of every partition of the subscribed topics."""
    with consumer(config) as client:
        return [source_of(tp) for tp in partitions(client, config)]


def lag(config: KafkaConfig) -> dict[str, int]:
    """Messages waiting per partition after ``config.resume`` (or from ``start`` when none is known)."""
    with consumer(config) as client:
        tps = partitions(client, config)
        seek(client, config, tps, config.resume)
        starts = {tp: client.position(tp) for tp in tps}
        ends = high_water(client, tps, config.connect_seconds)
        return {source_of(tp): max(ends[tp] - starts[tp], 0) for tp in tps}


def _waiting(config: KafkaConfig) -> list[str]:
    """Sensor probe: ``"<topic>/<partition> lag <n>"`` for each partition with messages waiting."""
    return [f"{source} lag {n}" for source, n in lag(config).items() if n > 0]


connector: Connector[KafkaConfig] = Connector(
    name="kafka",
    kind=Kind.STREAMING,
    config_model=KafkaConfig,
    factory=kafka_resource,
    description="Kafka topics in bounded micro-batches; offsets committed with the data in the zones",
    probe=_waiting,
    kinds=frozenset({"kafka"}),
    describe_source=lambda config: (
        f"kafka topics {', '.join(config.topics) or '/' + str(config.topic_pattern) + '/'}"
        f" at {config.bootstrap_servers}"
    ),
    positions=topic_partitions,
)
