"""Bounded reads of Kafka partitions with kafka-python: no consumer-group membership, explicit seeks.

A run assigns every partition of its topics itself (no group join, no rebalance wait) and seeks each to
the position after the last committed offset. Its end is the high-water mark of each partition as the
first fetch of the run reports it (``KafkaConsumer.end_offsets`` under-reports on some brokers, e.g.
Tansu, so the fetch responses are the measure); messages that arrive later are left for the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from connectors._contract import ConnectorError
from connectors.kafka._decode import Messages
from connectors.kafka.config import KafkaConfig

log = logging.getLogger("lakegate.connectors.kafka")

_POLL_MS = 200


class KafkaUnavailableError(ConnectorError):
    """The brokers did not answer within ``connect_seconds``; nothing was read, nothing is lost."""


def source_of(tp: TopicPartition) -> str:
    """``topic/partition``: the ``_lakegate_source`` of a partition's messages."""
    return f"{tp.topic}/{tp.partition}"


@contextmanager
def consumer(config: KafkaConfig) -> Iterator[KafkaConsumer]:
    """A consumer with no group membership and no auto commit, closed afterwards.

    Raises:
        KafkaUnavailableError: no broker answered within ``connect_seconds``.
    """
    try:
        client = KafkaConsumer(
            bootstrap_servers=config.bootstrap_servers.split(","),
            client_id="lakegate",
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=config.start,  # only when a seek lands outside the log (e.g. retention)
            # Larger fetches than the 1 MiB default: fewer round trips per drained partition.
            max_partition_fetch_bytes=max(config.max_message_bytes + 1024, 8 << 20),
            request_timeout_ms=int(config.connect_seconds * 1000) + 1000,
            bootstrap_timeout_ms=int(config.connect_seconds * 1000),
        )
    except KafkaError as exc:
        raise KafkaUnavailableError(f"kafka at {config.bootstrap_servers}: {exc}") from None
    try:
        yield client
    finally:
        client.close(autocommit=False)


def partitions(client: KafkaConsumer, config: KafkaConfig) -> list[TopicPartition]:
    """Every partition of the subscribed topics that exist now, in topic and partition order."""
    names = sorted(client.topics()) if config.topic_pattern is not None else config.topics
    found = []
    for topic in names:
        if not config.subscribed(topic):
            continue
        numbers = client.partitions_for_topic(topic)
        if numbers is None:
            log.warning("kafka: topic %s does not exist (yet); nothing to read from it", topic)
            continue
        found += [TopicPartition(topic, p) for p in sorted(numbers)]
    return found


def seek(
    client: KafkaConsumer, config: KafkaConfig, tps: list[TopicPartition], after: Mapping[str, int]
) -> None:
    """Assign ``tps`` and place each right after its committed offset, or at ``config.start``."""
    client.assign(tps)
    for tp in tps:
        last = after.get(source_of(tp))
        if last is not None:
            client.seek(tp, last + 1)
        elif config.start == "earliest":
            client.seek_to_beginning(tp)
        else:
            client.seek_to_end(tp)


def high_water(client: KafkaConsumer, tps: list[TopicPartition], seconds: float) -> dict[TopicPartition, int]:
    """The high-water mark of each partition, from the consumer's fetch responses (for probes: the
    fetches move the positions).

    Raises:
        KafkaUnavailableError: a partition gave no fetch response within ``seconds``.
    """
    deadline = time.monotonic() + seconds
    marks: dict[TopicPartition, int] = {}
    while True:
        marks.update(
            {tp: mark for tp in tps if tp not in marks and (mark := client.highwater(tp)) is not None}
        )
        if len(marks) == len(tps):
            return marks
        _check_answered(tps, marks, deadline, seconds)
        client.poll(timeout_ms=_POLL_MS, max_records=10_000)


def _check_answered(
    tps: list[TopicPartition], marks: Mapping[TopicPartition, int], deadline: float, seconds: float
) -> None:
    if time.monotonic() > deadline:
        missing = ", ".join(source_of(tp) for tp in tps if tp not in marks)
        raise KafkaUnavailableError(f"kafka: no answer for {missing} within {seconds:.0f} s")


def read(client: KafkaConsumer, config: KafkaConfig, tps: list[TopicPartition]) -> Iterator[Messages]:
    """Batches of the messages between each partition's position and its high-water mark at the start.

    A partition's end is the high-water mark its first fetch response of the run reports (records of
    that response lie below it). Stops at those ends, after ``max_records`` messages or after
    ``max_seconds``, whichever is first.

    Raises:
        KafkaUnavailableError: a partition gave no fetch response within ``connect_seconds``, or no
            messages came for ``connect_seconds`` while some were left below the high-water marks.
    """
    started = time.monotonic()
    deadline = started + config.connect_seconds
    idle = 0.0  # seconds spent in polls that brought nothing since the last that brought messages
    ends: dict[TopicPartition, int] = {}
    left = config.max_records
    todo = set(tps)
    pending = _Batch()
    while todo and (left is None or left > 0):
        if config.max_seconds is not None and time.monotonic() - started > config.max_seconds:
            log.info("kafka: max_seconds reached; the rest is left for the next run")
            break
        want = config.batch_records if left is None else min(config.batch_records, left)
        polled = time.monotonic()
        fetched = client.poll(timeout_ms=_POLL_MS, max_records=want - len(pending))
        idle = 0.0 if fetched else idle + time.monotonic() - polled
        if idle > config.connect_seconds:  # e.g. the broker went away mid-run and did not come back
            _stalled(todo, config.connect_seconds)
        ends.update(
            {tp: mark for tp in todo if tp not in ends and (mark := client.highwater(tp)) is not None}
        )
        for tp, records in fetched.items():
            end = ends.get(tp)
            if tp not in todo or end is None:
                continue
            if records[-1].offset >= end:  # arrived after the run started: the next run's
                records = [r for r in records if r.offset < end]
            pending.add(source_of(tp), records)
            if left is not None:
                left -= len(records)
        todo = {tp for tp in todo if tp not in ends or client.position(tp) < ends[tp]}
        if len(ends) < len(tps):
            _check_answered(tps, ends, deadline, config.connect_seconds)
        if len(pending) >= want:
            yield pending.take()
    if len(pending):
        yield pending.take()


def _stalled(todo: set[TopicPartition], seconds: float) -> None:
    waiting = ", ".join(sorted(source_of(tp) for tp in todo))
    raise KafkaUnavailableError(
        f"kafka: no messages from {waiting} for {seconds:.0f} s below their high-water marks"
    )


def commit_group(client: KafkaConsumer, config: KafkaConfig, tps: list[TopicPartition]) -> None:
    """Commit the zone's positions to ``config.group_id`` for lag tools (never read back as truth)."""
    if config.group_id is None:
        return
    offsets = {
        tp: OffsetAndMetadata(config.resume[source_of(tp)] + 1, "lakegate", -1)
        for tp in tps
        if source_of(tp) in config.resume
    }
    if offsets:
        try:
            client.commit(offsets)
        except KafkaError as exc:  # informational only: the zones hold the truth
            log.warning("kafka: could not commit offsets to group %s: %s", config.group_id, exc)


class _Batch:
    """Messages gathered across polls until a batch is full, kept column by column."""

    def __init__(self) -> None:
        self._columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, source: str, records: list[Any]) -> None:
        if records:
            sources, offsets, keys, values, stamps, headers = self._columns
            sources += [source] * len(records)
            # Field by field: measured 2x faster than transposing tuples of the fields.
            offsets += [r.offset for r in records]
            keys += [r.key for r in records]
            values += [r.value for r in records]
            stamps += [r.timestamp for r in records]
            headers += [r.headers or None for r in records]  # no list kept per message: less for the GC
            self._count += len(records)

    def take(self) -> Messages:
        taken = Messages(*self._columns)
        self._columns, self._count = ([], [], [], [], [], []), 0
        return taken
