"""The pipeline spec: what a ``defs.yaml`` declares, checked before anything runs.

The *what* (source, pattern, columns, PII, transforms, checks, trigger) lives in YAML; the *how* is
referenced by registered name. ``check_spec`` turns every user mistake into one line naming the field
and the fix.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors import ConnectorError, get_connector
from lakegate.registry import suggest
from pipelines._values import env_problems, resolve_env
from pipelines.quality import Expectation, expectation_problems
from transforms import TYPE_NAMES, TransformLoadError, UnknownTransformError, dtype_of, get_transform
from zones import DatasetSpec, PiiMethod, ZoneName, parse_duration
from zones.erasure import ErasurePolicy
from zones.pii import GENERALIZE_TYPES, PII_KEY_ENV, TEXT_METHODS, Encryptor, PiiKeyError
from zones.pii_detection import PiiDetection

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ZONE_URL_PREFIX = "lakegate://"


class Pattern(StrEnum):
    """Onboarding pattern: where the transform runs relative to the load."""

    EL = "EL"
    ELT = "ELT"
    ETL = "ETL"


class History(StrEnum):
    """``history:`` — what curated keeps besides the current state (ELT)."""

    SCD2 = "scd2"
    """``<dataset>_history``: one row per version of each key, ``valid_from``/``valid_to``/``is_current``
    (change rows from a CDC connector)."""


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
    partition, or by ``column`` (a declared ``date``/``datetime`` event-time column) when set;
    ``landing``: archived landing files by the day they were committed.
    """

    landing: str | None = None
    raw: str | None = None
    curated: str | None = None
    pii: str | None = None
    quarantine: str | None = None
    column: str | None = None

    @field_validator("landing", "raw", "curated", "pii", "quarantine")
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
    pii_detection: PiiDetection = PiiDetection.TOKENIZE
    """What happens to PII found by content in every string column: ``tokenize`` (default: replaced in
    place by tokens, plaintext to the pii zone), ``quarantine`` (the record goes to quarantine, values
    vaulted), ``report`` (counted only) or ``off``."""
    transforms: list[str] = Field(default_factory=list)
    order_by: list[str] = Field(default_factory=list)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    trigger: TriggerSpec | None = None
    cdc: CdcSpec | None = None
    retention: RetentionSpec = Field(default_factory=RetentionSpec)
    history: History | None = None
    erasure: ErasurePolicy = ErasurePolicy.DELETE
    """What ``lakegate erase`` does to this dataset's rows holding the subject: ``delete`` them, or
    ``null`` their PII columns (and replace tokens inside other text) in raw and curated."""

    @field_validator("name", "domain")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"'{value}' must be lowercase letters, digits and _ (starting with a letter)")
        return value

    @field_validator("pii_detection", mode="before")
    @classmethod
    def _detection_mode(cls, value: object) -> object:
        if value is False:  # YAML 1.1 reads an unquoted `off` as false
            return PiiDetection.OFF
        known = [m.value for m in PiiDetection]
        if isinstance(value, bool):
            raise ValueError(f"'{value}' is not a mode; use one of {', '.join(known)}")
        if isinstance(value, str) and value not in known:
            raise ValueError(f"unknown mode '{value}'{suggest(value, known)}; use one of {', '.join(known)}")
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
            pii_detection=self.pii_detection,
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
    problems += _pii_operator_problems(spec)
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
    if spec.history is not None and spec.pattern is not Pattern.ELT:
        problems.append(
            "history: built from raw's change rows, so it needs pattern ELT; use ELT or remove 'history'"
        )
    return problems + _table_list_problems(spec)


def _table_list_problems(spec: PipelineSpec) -> list[str]:
    """What a pipeline whose connector names several tables (one pipeline each, see
    :mod:`pipelines.fanout`) may not declare: one set of columns or PII for every table."""
    try:
        connector = get_connector(spec.connector.type)
        parts = connector.split(spec.connector.config) if connector.split else []
    except (ConnectorError, ValueError, TypeError):  # an invalid entry: the connector's check names it
        return []
    problems = [
        f"{field}: declared for all {len(parts)} tables of the list; declare one pipeline per table "
        "to declare its columns or PII"
        for field, value in (("columns", spec.columns), ("pii", spec.pii))
        if value and parts
    ]
    return problems + [
        f"connector.config.tables: '{part.dataset}' is not a valid pipeline name; set its 'dataset' "
        "(lowercase letters, digits and _)"
        for part in parts
        if not _NAME.match(part.dataset)
    ]


def _pii_operator_problems(spec: PipelineSpec) -> list[str]:
    """Each PII operator on a declared type it can write: text operators on strings, ``generalize`` on
    IPs (strings), dates, datetimes and numbers."""
    problems = []
    for name, method in spec.pii.items():
        declared = spec.columns.get(name)
        if declared is None:
            continue
        base = declared.type.split("(")[0]
        if method is PiiMethod.GENERALIZE and base not in GENERALIZE_TYPES:
            problems.append(
                f"pii.{name}: generalize keeps IP addresses (string), dates, datetimes and numbers, "
                f"not {declared.type}; use redact or hash"
            )
        elif method in TEXT_METHODS and declared.type != "string":
            problems.append(
                f"pii.{name}: {method} writes text but {name} is declared {declared.type}; "
                f"declare it string{' or use generalize' if base in GENERALIZE_TYPES else ''}"
            )
    encrypted = [name for name, method in spec.pii.items() if method is PiiMethod.ENCRYPT]
    if encrypted:  # checked before any run: a load must not discover a missing key halfway
        token_key = os.environ.get(PII_KEY_ENV, "").encode() or None
        try:
            Encryptor.from_key(None, f"columns {', '.join(encrypted)}", token_key)
        except PiiKeyError as exc:
            problems.append(f"pii.{encrypted[0]}: {exc}")
    return problems


__all__ = ["TYPE_NAMES", "ZONE_URL_PREFIX", "PipelineSpec", "check_spec"]
