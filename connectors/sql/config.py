"""Configuration of the ``sql`` connector."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from connectors import ConnectorConfig

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
_DATASET = r"^[a-z][a-z0-9_]*$"

Backend = Literal["pyarrow", "connectorx"]


class SqlDatabase(ConnectorConfig):
    """Where the tables are: what ``lakegate discover`` needs to list them.

    Attributes:
        url: SQLAlchemy URL (``sqlite:////data/shop.db``, ``postgresql+psycopg2://user:pw@host/db``,
            ``mysql+pymysql://user:pw@host/db``); pass it as ``{env: NAME}`` when it holds a password (never
            echoed). A file URL fsspec reads (``file://``, ``s3://``, ``lakegate://landing/...``) is a SQLite
            database file.
        schema_name: The tables' schema (default: the connection's).
        storage_options: fsspec options for a SQLite file URL (credentials resolved by the caller).
    """

    url: str = Field(min_length=1, repr=False)
    schema_name: str | None = Field(default=None, pattern=_IDENT)
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold credentials


class SqlTable(ConnectorConfig):
    """One entry of ``tables``: a table name, with what differs from the pipeline-wide settings.

    Attributes:
        table: The table to replicate.
        dataset: Its dataset (and pipeline) name under the pipeline's domain (default: the table name in
            lowercase).
        cursor, cursor_type, initial_value, primary_key, full_refresh: Override the config's own.
    """

    table: str = Field(pattern=_IDENT)
    dataset: str | None = Field(default=None, pattern=_DATASET)
    cursor: str | None = Field(default=None, pattern=_IDENT)
    cursor_type: Literal["int", "timestamp"] | None = None
    initial_value: int | str | None = None
    primary_key: list[str] | None = None
    full_refresh: bool | None = None

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.table.lower()


class SqlConfig(SqlDatabase):
    """One table (``table``) or several (``tables``) of any SQLAlchemy database, read incrementally by a
    cursor column.

    Attributes:
        table: The table to replicate.
        tables: Several tables, each its own dataset, pipeline and Dagster assets (a name, or a mapping
            with per-table overrides, see :class:`SqlTable`); ``lakegate discover`` writes every table of
            the schema here. Exclusive with ``table``.
        cursor: Column that grows with every insert or change (a serial id, ``updated_at``); not needed
            with ``full_refresh``.
        cursor_type: ``int`` (the position is the value) or ``timestamp`` (epoch microseconds).
        initial_value: Rows with a cursor below this are never read (an int, or an ISO timestamp).
        primary_key: Key columns (declared to dlt; the pipeline's ``primary_key`` merges curated).
        full_refresh: Read the whole table every run (no cursor state).
        backend: dlt ``sql_table`` backend yielding Arrow: ``pyarrow`` (SQLAlchemy rows) or ``connectorx``
            (the ``connectorx`` extra; PostgreSQL, MySQL, SQLite, ... read in Rust).
        chunk_size: Rows per Arrow table.
        resume: Filled by lakegate with the cursor position committed in the zones.
    """

    table: str | None = Field(default=None, pattern=_IDENT)
    tables: list[SqlTable] = Field(default_factory=list)
    cursor: str | None = Field(default=None, pattern=_IDENT)
    cursor_type: Literal["int", "timestamp"] = "int"
    initial_value: int | str | None = None
    primary_key: list[str] = Field(default_factory=list)
    full_refresh: bool = False
    backend: Backend = "pyarrow"
    chunk_size: int = Field(default=50_000, ge=1)
    resume: dict[str, int] = Field(default_factory=dict)

    @field_validator("tables", mode="before")
    @classmethod
    def _names_are_tables(cls, value: Any) -> Any:
        """``- orders`` is short for ``- {table: orders}``."""
        if isinstance(value, list):
            return [{"table": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _one_table_or_a_list(self) -> SqlConfig:
        if (self.table is None) == (not self.tables):
            raise ValueError(
                "set either 'table' or 'tables' (run `lakegate discover <pipeline>` to list every table "
                "of the schema)"
            )
        datasets = [t.dataset_name for t in self.tables]
        twice = sorted({d for d in datasets if datasets.count(d) > 1})
        if twice:
            raise ValueError(f"tables: dataset(s) {', '.join(twice)} named twice; set 'dataset' on one")
        for one in self.split() if self.tables else [self]:
            if one.cursor is None and not one.full_refresh:
                raise ValueError(f"table {one.table}: set 'cursor' (or full_refresh: true)")
        return self

    def split(self) -> list[SqlConfig]:
        """One single-table config per entry of ``tables`` (overrides applied)."""
        base = self.model_dump(exclude={"tables", "table"})
        return [
            SqlConfig.model_validate({**base, **entry.model_dump(exclude={"dataset"}, exclude_none=True)})
            for entry in self.tables
        ]

    @property
    def source(self) -> str:
        """The ``_lakegate_source`` of every row (one table's config)."""
        return f"table:{self.schema_name + '.' if self.schema_name else ''}{self.table}"
