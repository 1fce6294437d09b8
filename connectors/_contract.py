"""The connector contract: what every lakegate connector is and what it yields.

A connector is a named factory of a dlt source or resource. Built-in connectors yield Arrow tables
(never per-row dicts on hot paths). Besides the data columns they may add the reserved columns of
:mod:`lakegate.columns` (source, position and, on rows they cannot parse, reject rule, reason and raw
text); the lakegate zone destination reads them.

A connector also describes itself, so generic code (the Dagster component, sensors, the CLI) never
branches on a connector's name: the kinds it shows in the UI, a one-line description of a configured
source, how to probe the source for sensors, and which storage-option dialect it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

import pyarrow as pa
from dlt.extract import DltResource, DltSource
from pydantic import BaseModel, ConfigDict, ValidationError

from lakegate.errors import LakegateError
from lakegate.registry import suggest

StorageDialect = Literal["fsspec", "object_store"]
"""How a connector names storage options: fsspec's (``key``, ``secret``, ``token``) or object_store's
(``aws_access_key_id``, ... as deltalake and polars take them)."""


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


class ConnectorError(LakegateError):
    """Base of every error the connectors package raises for a user's config, source or plug-in."""


class ConnectorConfigError(ConnectorError, ValueError):
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
        probe: Optional cheap look at what is waiting at the source: identities of the units waiting
            (files, partitions with lag); sensors compare them between ticks to decide on a run.
        kinds: Technology tags shown on the source's asset in the UI (e.g. ``{"fsspec"}``); the
            connector's name when empty.
        describe_source: One line naming where a configured source is (never a credential), e.g.
            ``"files at s3://drops/*.csv"``.
        storage_options: The dialect of a ``storage_options`` config field, when the connector takes
            one: callers then pass the zone's credentials for ``lakegate://<zone>/...`` URLs.
        positions: Ordered connectors (replication, streaming): the ``_lakegate_source`` ids a configured
            source covers (topic partitions, a slot, tables). lakegate reads their committed positions
            from the zones and passes them back in the config's ``resume`` field (source -> highest
            committed position), so the connector resumes right after the zone's record on any machine.
        health: Optional source health measures (name -> value, e.g. ``slot_lag_bytes``) that checks
            hold against the thresholds a ``defs.yaml`` declares. Read-only: acknowledges nothing.
        source_rows: Optional ``count(*)`` of what the source holds now, for reconciliation checks.
        source_sample: Optional rows the source holds now for the given key values (key columns, key
            tuples) as column -> value dicts, for the reconciliation check's sampled checksum.
        ingested: Optional, with ``probe``: the probe identities the resource's dlt state records as
            ingested. Lets ``lakegate run`` see that nothing new waits without starting a run.
    """

    name: str
    kind: Kind
    config_model: type[C]
    factory: Callable[[C], DltSource | DltResource]
    description: str = ""
    probe: Callable[[C], Sequence[str]] | None = None
    kinds: frozenset[str] = frozenset()
    describe_source: Callable[[C], str] | None = None
    storage_options: StorageDialect | None = None
    positions: Callable[[C], Sequence[str]] | None = None
    health: Callable[[C], Mapping[str, int]] | None = None
    source_rows: Callable[[C], int] | None = None
    source_sample: Callable[[C, Sequence[str], Sequence[tuple[Any, ...]]], list[dict[str, Any]]] | None = None
    ingested: Callable[[Mapping[str, Any]], Collection[str]] | None = None

    def __post_init__(self) -> None:
        if self.positions is not None and "resume" not in self.config_model.model_fields:
            raise ConnectorError(
                f"connector '{self.name}' reports positions, so its config needs a field "
                "'resume: dict[str, int]' (lakegate fills it with the committed positions)"
            )

    def resumed(self, raw: Mapping[str, Any], committed: Mapping[str, int]) -> dict[str, Any]:
        """``raw`` with ``committed`` positions merged into ``resume`` (the zone's record wins)."""
        return {**raw, "resume": {**dict(raw.get("resume") or {}), **committed}}

    @property
    def ui_kinds(self) -> set[str]:
        """The kinds the UI shows for the source (at most three, as Dagster allows)."""
        return set(sorted(self.kinds)[:3]) or {self.name}

    def source_line(self, raw: Mapping[str, Any]) -> str:
        """A one-line description of the configured source, safe to show (no credentials)."""
        try:
            config = self.parse_config(raw)
        except ConnectorConfigError:
            return f"{self.name} connector"
        where = self.describe_source(config) if self.describe_source else ""
        return f"{self.name} connector: {where}" if where else f"{self.name} connector"

    def parse_config(self, raw: Mapping[str, Any]) -> C:
        """Validate a raw config mapping.

        Raises:
            ConnectorConfigError: one line per invalid field, naming the field and what it needs.
        """
        try:
            return self.config_model.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(self._explain(err) for err in exc.errors())
            raise ConnectorConfigError(f"connector '{self.name}': {problems}") from None

    def _explain(self, err: Any) -> str:
        where = f"config.{'.'.join(str(p) for p in err['loc']) or '<root>'}"
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            valid = list(self.config_model.model_fields)
            hint = suggest(str(err["loc"][0]), valid)
            return f"{where}: unknown key{hint}; valid keys: {', '.join(valid)}"
        return f"{where}: {err['msg']}"

    def build(self, raw_config: Mapping[str, Any]) -> DltSource | DltResource:
        """Validate ``raw_config`` and return the dlt source/resource it describes."""
        return self.factory(self.parse_config(raw_config))
