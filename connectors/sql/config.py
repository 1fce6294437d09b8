"""Configuration of the ``sql`` connector."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors import ConnectorConfig

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class SqlConfig(ConnectorConfig):
    """One table of any SQLAlchemy database, read incrementally by a cursor column.

    Attributes:
        url: SQLAlchemy URL (``sqlite:////data/shop.db``, ``postgresql+psycopg2://user:pw@host/db``);
            pass it as ``{env: NAME}`` when it holds a password (never echoed). A file URL fsspec reads
            (``file://``, ``s3://``, ``lakegate://landing/...``) is a SQLite database file.
        table: The table to replicate.
        schema_name: Its schema (default: the connection's).
        cursor: Column that grows with every insert or change (a serial id, ``updated_at``).
        cursor_type: ``int`` (the position is the value) or ``timestamp`` (epoch microseconds).
        initial_value: Rows with a cursor below this are never read (an int, or an ISO timestamp).
        primary_key: Key columns (declared to dlt; the pipeline's ``primary_key`` merges curated).
        full_refresh: Read the whole table every run (no cursor state).
        chunk_size: Rows per Arrow table.
        storage_options: fsspec options for a SQLite file URL (credentials resolved by the caller).
        resume: Filled by lakegate with the cursor position committed in the zones.
    """

    url: str = Field(min_length=1, repr=False)
    table: str = Field(pattern=_IDENT)
    schema_name: str | None = Field(default=None, pattern=_IDENT)
    cursor: str = Field(pattern=_IDENT)
    cursor_type: Literal["int", "timestamp"] = "int"
    initial_value: int | str | None = None
    primary_key: list[str] = Field(default_factory=list)
    full_refresh: bool = False
    chunk_size: int = Field(default=50_000, ge=1)
    storage_options: dict[str, str] = Field(default_factory=dict, repr=False)  # may hold credentials
    resume: dict[str, int] = Field(default_factory=dict)

    @property
    def source(self) -> str:
        """The ``_lakegate_source`` of every row."""
        return f"table:{self.schema_name + '.' if self.schema_name else ''}{self.table}"
