"""Configuration of the ``postgres_cdc`` connector."""

from __future__ import annotations

import hashlib
import re

from pydantic import Field

from connectors import ConnectorConfig

_IDENT = r"^[a-z_][a-z0-9_]*$"
_MAX_IDENT = 63  # PostgreSQL's NAMEDATALEN - 1


def pipeline_identifier(pipeline_key: str) -> str:
    """``lakegate_<pipeline key>`` as a PostgreSQL slot/publication name: lower case, ``[a-z0-9_]``,
    at most 63 characters (a long key keeps a hash of the whole, so two keys never meet)."""
    name = "lakegate_" + re.sub(r"[^a-z0-9_]", "_", pipeline_key.lower())
    if len(name) <= _MAX_IDENT:
        return name
    digest = hashlib.sha256(pipeline_key.encode()).hexdigest()[:8]
    return f"{name[: _MAX_IDENT - 9]}_{digest}"


def pipeline_defaults(pipeline_key: str) -> dict[str, str]:
    """A slot and a publication of the pipeline's own (a shared slot would acknowledge one pipeline's
    changes for another)."""
    name = pipeline_identifier(pipeline_key)
    return {"slot": name, "publication": name}


class PostgresCdcConfig(ConnectorConfig):
    """One table replicated from PostgreSQL's write-ahead log (pgoutput); unknown keys are refused.

    Attributes:
        dsn: libpq connection string or URI (pass it as ``{env: NAME}``; it is never echoed). The role
            needs ``LOGIN REPLICATION`` and must own the table (to create the publication).
        table: ``schema.table`` (or ``table`` in ``public``) to replicate.
        slot: Replication slot name, created on the first run. A slot serves one pipeline: lakegate
            defaults it to ``lakegate_<domain>_<name>`` of the pipeline (``lakegate`` outside one).
        publication: Publication name, created (or extended with the table) when missing; defaulted
            per pipeline like ``slot``.
        max_changes: Stop after this many changes (checked at transaction boundaries); default: drain up
            to the WAL position current when the run started.
        max_seconds: Stop streaming after this long (checked between transactions).
        batch_rows: Changes per Arrow table handed to dlt.
        resume: Filled by lakegate with the position committed in the zones (source -> position).
    """

    dsn: str = Field(min_length=1, repr=False)
    table: str = Field(pattern=r"^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$")
    slot: str = Field(default="lakegate", pattern=_IDENT, max_length=_MAX_IDENT)
    publication: str = Field(default="lakegate", pattern=_IDENT, max_length=_MAX_IDENT)
    max_changes: int | None = Field(default=None, ge=1)
    max_seconds: float = Field(default=300.0, gt=0)
    batch_rows: int = Field(default=50_000, ge=1)
    resume: dict[str, int] = Field(default_factory=dict)

    @property
    def schema_name(self) -> str:
        return self.table.partition(".")[0] if "." in self.table else "public"

    @property
    def table_name(self) -> str:
        return self.table.rpartition(".")[2]

    @property
    def source(self) -> str:
        """The ``_lakegate_source`` of every change: the slot."""
        return f"slot:{self.slot}"
