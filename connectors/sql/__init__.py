"""The ``sql`` connector: incremental replication of one table through dlt's ``sql_table`` (pyarrow backend).

Each run reads the rows whose cursor is above the last position — dlt's incremental state, or, when the
local dlt folder is gone, the position committed in the zone (``resume``) — and yields them as Arrow
tables with the cursor as ``_lakegate_position``. The table is checked before extraction starts, so an
unreachable database, refused credentials or a missing table fail with one line (never the URL's password).
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dlt
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from dlt.extract import DltResource
from dlt.sources.sql_database import sql_table

from connectors import Connector, ConnectorError, Kind
from connectors.sql.config import SqlConfig
from lakegate.columns import POSITION, SOURCE

__all__ = ["SqlConfig", "SqlSourceError", "connector"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlSourceError(ConnectorError):
    """The database or table cannot be read; nothing was extracted."""


def _where(url: sa.engine.URL) -> str:
    return url.render_as_string(hide_password=True)


def _database_url(config: SqlConfig) -> str:
    """``config.url``, or for a SQLite file given by an fsspec URL the SQLite URL of a local file (a remote
    file is copied to a temporary file, replaced on every run)."""
    protocol = config.url.partition("://")[0]
    if protocol not in fsspec.available_protocols():
        return config.url
    fs, path = fsspec.core.url_to_fs(config.url, **config.storage_options)
    if protocol != "file":
        digest = hashlib.sha256(config.url.encode()).hexdigest()[:16]
        local = str(Path(tempfile.gettempdir()) / f"lakegate-sqlite-{digest}.db")
        fs.get(path, local)
        path = local
    return f"sqlite:///{path}"


def _check(config: SqlConfig) -> sa.Engine:
    """An engine on ``config.url`` after checking the table and cursor exist."""
    try:
        url = sa.engine.make_url(_database_url(config))
    except sa.exc.ArgumentError:
        raise SqlSourceError("sql: config.url is not a SQLAlchemy URL (details withheld)") from None
    at = f"sql {_where(url)}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            columns = {
                c["name"] for c in sa.inspect(conn).get_columns(config.table, schema=config.schema_name)
            }
    except sa.exc.NoSuchTableError:
        raise SqlSourceError(f"{at}: table {config.source.removeprefix('table:')} does not exist") from None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else ""
        for secret in filter(None, {url.password, quote(str(url.password or ""), safe="")}):
            reason = reason.replace(str(secret), "***")
        raise SqlSourceError(f"{at}: cannot read the database ({reason})") from None
    missing = [c for c in (config.cursor, *config.primary_key) if c not in columns]
    if missing:
        raise SqlSourceError(f"{at}: table {config.table} has no column(s) {', '.join(missing)}")
    return engine


def _value(position: int, config: SqlConfig) -> Any:
    """A position back as a cursor value."""
    if config.cursor_type == "timestamp":
        return (_EPOCH + timedelta(microseconds=position)).replace(tzinfo=None)
    return position


def _initial(config: SqlConfig) -> Any:
    if config.cursor_type == "timestamp" and isinstance(config.initial_value, str):
        return datetime.fromisoformat(config.initial_value)
    return config.initial_value


def _with_lineage(table: pa.Table, config: SqlConfig) -> pa.Table:
    cursor = table.column(config.cursor)
    if config.cursor_type == "timestamp":
        position = pc.cast(pc.cast(cursor, pa.timestamp("us")), pa.int64())
    else:
        position = pc.cast(cursor, pa.int64())
    return table.append_column(SOURCE, pa.array([config.source] * table.num_rows, pa.string())).append_column(
        POSITION, position
    )


def sql_resource(config: SqlConfig) -> DltResource:
    """The dlt ``sql_table`` resource of ``config.table`` with lakegate's lineage columns."""
    engine = _check(config)
    incremental = None
    if not config.full_refresh:
        committed = config.resume.get(config.source)
        incremental = dlt.sources.incremental(
            config.cursor,
            # The zone's position is used when dlt's state is gone; then only rows strictly after it.
            initial_value=_value(committed, config) if committed is not None else _initial(config),
            range_start="open" if committed is not None else "closed",
        )
    resource = sql_table(
        credentials=engine,
        table=config.table,
        schema=config.schema_name,
        incremental=incremental,
        backend="pyarrow",
        chunk_size=config.chunk_size,
        primary_key=config.primary_key,
        reflection_level="full",
    )
    return resource.add_map(lambda table: _with_lineage(table, config))


connector: Connector[SqlConfig] = Connector(
    name="sql",
    kind=Kind.REPLICATION,
    config_model=SqlConfig,
    factory=sql_resource,
    description="Incremental replication of one table of any SQLAlchemy database (dlt sql_table, Arrow)",
    kinds=frozenset({"sql", "sqlalchemy"}),
    describe_source=lambda config: (
        f"{config.source.removeprefix('table:')} at {_where(sa.engine.make_url(config.url))}"
    ),
    positions=lambda config: [config.source],
    storage_options="fsspec",
)
