"""Configuration of the ``kafka`` connector."""

from __future__ import annotations

import re
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from connectors._contract import ConnectorConfig


class KafkaConfig(ConnectorConfig):
    """Which topics to read and how to decode them; unknown keys and wrong types are refused.

    Attributes:
        bootstrap_servers: ``host:port[,host:port...]`` of the Kafka cluster.
        topics: Topics to read (every partition of each).
        topic_pattern: Or a regular expression the whole topic name must match (checked at each run, so
            new matching topics are picked up).
        format: ``json`` (each value one JSON object; its top-level fields become text columns) or
            ``bytes`` (the value kept as a binary ``value`` column).
        json_schema: Optional JSON Schema every ``json`` value must satisfy; others are quarantined.
        start: Where a partition with no committed position starts: ``earliest`` or ``latest``.
        max_records: Stop a run after this many messages (else at the high-water marks of its start).
        max_seconds: Stop a run after this long, whatever is left.
        max_message_bytes: Values larger than this are quarantined (``message_oversize``).
        batch_records: Messages decoded into one Arrow table.
        group_id: When set, the committed positions are also committed to this consumer group, for lag
            tools only (after the zone commit, at the start of the next run); never read back.
        connect_seconds: How long a run waits for the brokers before failing.
        resume: Filled by lakegate: ``topic/partition`` -> the highest offset committed in the zones.
    """

    bootstrap_servers: str = Field(min_length=1)
    topics: list[str] = Field(default_factory=list)
    topic_pattern: str | None = None
    format: Literal["json", "bytes"] = "json"
    json_schema: dict[str, Any] | None = None
    start: Literal["earliest", "latest"] = "earliest"
    max_records: int | None = Field(default=None, ge=1)
    max_seconds: float | None = Field(default=None, gt=0)
    max_message_bytes: int = Field(default=1_048_576, ge=1)
    batch_records: int = Field(default=50_000, ge=1)
    group_id: str | None = Field(default=None, min_length=1)
    connect_seconds: float = Field(default=30.0, gt=0)
    resume: dict[str, int] = Field(default_factory=dict)

    @field_validator("topic_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema ({exc.message})") from None
        return value

    @model_validator(mode="after")
    def _one_subscription(self) -> KafkaConfig:
        if bool(self.topics) == (self.topic_pattern is not None):
            raise ValueError("set exactly one of 'topics' (a list) or 'topic_pattern' (a regex)")
        if self.json_schema is not None and self.format != "json":
            raise ValueError("'json_schema' needs format: json")
        return self

    def subscribed(self, topic: str) -> bool:
        """Whether ``topic`` is one this config reads."""
        if self.topic_pattern is not None:
            return re.fullmatch(self.topic_pattern, topic) is not None
        return topic in self.topics
