"""The pipeline spec: what a ``defs.yaml`` declares, checked before anything runs.

The *what* (source, pattern, columns, PII, transforms, checks, trigger) lives in YAML; the *how* is
referenced by registered name. ``check_spec`` turns every user mistake into one line naming the field
and the fix.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors import ConnectorError, get_connector
from pipelines._values import env_problems, resolve_env
from pipelines.quality import Expectation, expectation_problems
from transforms import TYPE_NAMES, TransformLoadError, UnknownTransformError, dtype_of, get_transform
from zones import DatasetSpec, PiiMethod, ZoneName, parse_duration

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ZONE_URL_PREFIX = "lakegate://"


class Pattern(StrEnum):
    """Onboarding pattern: where the transform runs relative to the load."""

    EL = "EL"
    ELT = "ELT"
    ETL = "ETL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectorRef(_Strict):
    """``connector:`` — a registered connector name and its config."""

    type: str
    config: dict[str, Any] = Field(default_factory=dict)


class ColumnSpec(_Strict):
    """One declared column: its type and what it means."""

    type: str = "string"
    description: str = ""

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        dtype_of(value)  # raises ValueError listing the allowed types
        return value


class Scope(StrEnum):
    """What an expectation looks at: the rows a run wrote, or the whole table (on a schedule)."""

    BATCH = "batch"
    TABLE = "table"


class ExpectationSpec(_Strict):
    """A Great Expectations expectation by snake-case name with its arguments.

    ``scope: batch`` (default) checks the rows each run wrote, as part of the run; ``scope: table`` is for
    expectations only the whole table can answer (a column's mean, distinct values across all rows): they
    run on ``quality.table_schedule``, never per (micro-)batch.
    """

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    scope: Scope = Scope.BATCH


class QualitySpec(_Strict):
    """``quality:`` — declared expectations on top of the standard ones, whether failures block, and the
    cron schedule of the whole-table expectations (``scope: table``)."""

    expectations: list[ExpectationSpec] = Field(default_factory=list)
    blocking: bool = True
    table_schedule: str = "0 3 * * *"

    def scoped(self, scope: Scope) -> list[ExpectationSpec]:
        """The declared expectations of ``scope``."""
        return [e for e in self.expectations if e.scope is scope]


SENSORS = ("landing", "stream")


class CdcSpec(_Strict):
    """``cdc:`` — health thresholds of a replication source, checked after every run.

    Attributes:
        max_slot_lag_bytes: WAL written since the slot's acknowledged position (what the next run reads).
        max_retained_wal_bytes: WAL the server keeps for the slot (disk it cannot free).
        reconcile: After each curate, curated row count must equal the source's ``count(*)``.
    """

    max_slot_lag_bytes: int = 1 << 30
    max_retained_wal_bytes: int = 4 << 30
    reconcile: bool = True

    @field_validator("max_slot_lag_bytes", "max_retained_wal_bytes")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must be a number of bytes >= 0")
        return value


class TriggerSpec(_Strict):
    """``trigger:`` — a cron schedule or a sensor.

    Sensors: ``landing`` (new files in the landing zone) and ``stream`` (a streaming source's partitions
    have lag: a micro-batch run is requested, at most every ``interval_seconds``). ``max_lag`` (stream
    only) is the consumer lag, in messages waiting over all partitions, above which the ``consumer_lag``
    check fails.
    """

    cron: str | None = None
    sensor: str | None = None
    # Plain types, bounds checked below: Dagster's component model refuses constrained fields.
    interval_seconds: int = 30
    max_lag: int | None = None

    @model_validator(mode="after")
    def _one_of(self) -> TriggerSpec:
        if bool(self.cron) == bool(self.sensor):
            raise ValueError("set exactly one of 'cron' or 'sensor'")
        if self.sensor and self.sensor not in SENSORS:
            raise ValueError(f"unknown sensor '{self.sensor}'; available: {', '.join(SENSORS)}")
        if self.max_lag is not None and self.sensor != "stream":
            raise ValueError("'max_lag' needs sensor: stream")
        if self.interval_seconds < 1 or (self.max_lag is not None and self.max_lag < 0):
            raise ValueError("'interval_seconds' must be >= 1 and 'max_lag' >= 0")
        return self


class RetentionSpec(_Strict):
    """``retention:`` — how long each zone keeps this dataset's rows (``30d``, ``400d``, ``2w``...).

    A zone left out takes the zone default from ``lakegate.yaml``. Rows expire by their ingest-date
    partition, or by ``column`` (a declared ``date``/``datetime`` event-time column) when set.
    """

    raw: str | None = None
    curated: str | None = None
    pii: str | None = None
    quarantine: str | None = None
    column: str | None = None

    @field_validator("raw", "curated", "pii", "quarantine")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # raises ValueError naming the accepted forms
        return value

    def of(self, zone: ZoneName) -> str | None:
        """The retention declared for ``zone`` (``None``: the zone default)."""
        value = getattr(self, zone.value, None)
        return value if isinstance(value, str) else None


class PipelineSpec(_Strict):
    """Everything one ingestion pipeline declares."""

    name: str
    domain: str
    description: str = ""
    connector: ConnectorRef
    pattern: Pattern = Pattern.ELT
    primary_key: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    pii: dict[str, PiiMethod] = Field(default_factory=dict)
    transforms: list[str] = Field(default_factory=list)
    order_by: list[str] = Field(default_factory=list)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    trigger: TriggerSpec | None = None
    cdc: CdcSpec | None = None
    retention: RetentionSpec = Field(default_factory=RetentionSpec)

    @field_validator("name", "domain")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"'{value}' must be lowercase letters, digits and _ (starting with a letter)")
        return value

    @property
    def key(self) -> str:
        """``<domain>_<name>``: unique across the project, the prefix of every job, schedule and sensor."""
        return f"{self.domain}_{self.name}"

    @property
    def path(self) -> str:
        """``<domain>/<name>``, as zones and the CLI name the dataset."""
        return f"{self.domain}/{self.name}"

    @property
    def streaming(self) -> bool:
        """Triggered by the stream sensor: each run is one micro-batch."""
        return self.trigger is not None and self.trigger.sensor == "stream"

    @property
    def ingest_zone(self) -> ZoneName:
        """Where the ingest step commits: curated for ETL (transformed in flight), raw otherwise."""
        return ZoneName.CURATED if self.pattern is Pattern.ETL else ZoneName.RAW

    def dataset(self) -> DatasetSpec:
        """The zone-level contract of this pipeline's dataset."""
        return DatasetSpec(
            domain=self.domain,
            name=self.name,
            schema={name: column.type for name, column in self.columns.items()},
            primary_key=tuple(self.primary_key),
            pii=dict(self.pii),
            order_by=tuple(self.order_by),  # merges keep the greatest: an older change never wins
        )


def check_spec(spec: PipelineSpec) -> list[str]:
    """Cross-field checks pydantic cannot do alone; each problem is ``field: what is wrong; the fix``."""
    problems: list[str] = []
    unset = env_problems(spec.connector.config, "connector.config")
    problems += unset
    try:
        connector = get_connector(spec.connector.type)
        if not unset:
            connector.parse_config(resolve_env(spec.connector.config, "connector.config"))
        if spec.streaming and connector.probe is None:
            problems.append(
                f"trigger.sensor: connector '{connector.name}' cannot be probed for lag; use a cron trigger"
            )
    except ConnectorError as exc:
        problems.append(f"connector: {exc}")
    for name in spec.transforms:
        try:
            get_transform(name)
        except (UnknownTransformError, TransformLoadError) as exc:
            problems.append(f"transforms: {exc}")
    declared = set(spec.columns)
    for field, names in (
        ("primary_key", spec.primary_key),
        ("pii", list(spec.pii)),
        ("order_by", spec.order_by),
    ):
        missing = [n for n in names if declared and n not in declared]
        if missing:
            problems.append(
                f"{field}: {', '.join(missing)} not declared under columns; declare them or fix the name"
            )
    if spec.pii and not spec.columns:
        problems.append("pii: declare the dataset's columns so a renamed PII column is caught; add 'columns'")
    for name in spec.pii:
        declared_type = spec.columns.get(name)
        if declared_type is not None and declared_type.type != "string":
            problems.append(
                f"pii: {name} is declared {declared_type.type}; tokens and masks are text, declare it string"
            )
    declared_expectations = [Expectation(e.type, e.kwargs) for e in spec.quality.expectations]
    problems += [
        f"quality.expectations{problem}"
        for problem in expectation_problems(declared_expectations, list(declared))
    ]
    if spec.pattern is not Pattern.EL and not spec.primary_key:
        problems.append(f"primary_key: pattern {spec.pattern} merges curated by key; declare primary_key")
    event_time = spec.retention.column
    if event_time is not None and spec.columns.get(event_time, ColumnSpec()).type not in {"date", "datetime"}:
        problems.append(
            f"retention.column: '{event_time}' must be a declared date or datetime column (the event time)"
        )
    if spec.pattern is Pattern.EL and spec.transforms:
        problems.append("transforms: pattern EL loads as received; use ELT or ETL to transform")
    return problems


__all__ = ["TYPE_NAMES", "ZONE_URL_PREFIX", "PipelineSpec", "check_spec"]
