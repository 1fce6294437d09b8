"""The connector contract: what every lakegate connector is and what it yields.

A connector is a named factory of a dlt source or resource. Built-in connectors yield Arrow tables
(never per-row dicts on hot paths). Besides the data columns they may add the reserved columns below;
the lakegate zone destination reads them (the names are a wire protocol, mirrored in ``zones``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import pyarrow as pa
from dlt.extract import DltResource, DltSource
from pydantic import BaseModel, ConfigDict, ValidationError

# Reserved columns a connector may add to the Arrow tables it yields.
SOURCE = "_lakegate_source"
"""Where a row came from: a file URL, ``topic/partition``, a replication slot or table."""
POSITION = "_lakegate_position"
"""The row's position within its source: data-row number, offset or LSN (int64)."""
REJECT_RULE = "_lakegate_reject_rule"
"""Set on a row the connector could not parse: the rule it broke (e.g. ``csv_field_count``)."""
REJECT_REASON = "_lakegate_reject_reason"
"""Human-readable reason a row was rejected; never contains the row's values."""
RAW_TEXT = "_lakegate_raw"
"""The rejected record exactly as received (the destination vaults it when the dataset holds PII)."""


def plain_strings(table: pa.Table) -> pa.Table:
    """Cast ``large_string``/``string_view`` columns (what polars emits) to ``string``.

    dlt writes the Arrow tables of one resource into one load file, which needs one schema; readers
    that mix pyarrow and polars output use this to agree on string types.
    """
    wide = (pa.large_string(), pa.string_view())
    if not any(field.type in wide for field in table.schema):
        return table
    return table.cast(pa.schema([f.with_type(pa.string()) if f.type in wide else f for f in table.schema]))


class Kind(StrEnum):
    """How a connector's source behaves over time."""

    BATCH = "batch"
    REPLICATION = "replication"
    STREAMING = "streaming"


class ConnectorConfig(BaseModel):
    """Base of every connector config: strict, immutable, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConnectorConfigError(ValueError):
    """A connector config that does not validate; the message names each field and the fix."""


C = TypeVar("C", bound=ConnectorConfig)


@dataclass(frozen=True)
class Connector(Generic[C]):
    """A registered connector.

    Attributes:
        name: Registry name used in ``defs.yaml`` (``connector.type``).
        kind: ``batch``, ``replication`` or ``streaming``.
        config_model: Strict pydantic model of the connector's ``config`` block.
        factory: Builds the dlt source/resource from a validated config.
        description: One line shown by ``lakegate`` tooling.
        probe: Optional cheap look at what is waiting at the source, for sensors.
    """

    name: str
    kind: Kind
    config_model: type[C]
    factory: Callable[[C], DltSource | DltResource]
    description: str = ""
    probe: Callable[[C], Sequence[str]] | None = None
    """Optional: identities of the units waiting at the source (files, partitions with lag); sensors
    compare them between ticks to decide whether to start a run."""

    def parse_config(self, raw: Mapping[str, Any]) -> C:
        """Validate a raw config mapping.

        Raises:
            ConnectorConfigError: one line per invalid field, naming the field and what it needs.
        """
        try:
            return self.config_model.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(
                f"config.{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConnectorConfigError(f"connector '{self.name}': {problems}") from None

    def build(self, raw_config: Mapping[str, Any]) -> DltSource | DltResource:
        """Validate ``raw_config`` and return the dlt source/resource it describes."""
        return self.factory(self.parse_config(raw_config))
