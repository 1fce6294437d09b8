"""The ``sql`` connector: incremental replication of tables through dlt's ``sql_table`` (Arrow backends).

A config names one ``table`` or a list of ``tables``; lakegate splits a list into one pipeline per table
(:attr:`connectors.Connector.split`), so each lands in its own dataset. Each run reads the rows whose
cursor is above the last position — dlt's incremental state, or, when the local dlt folder is gone, the
position committed in the zone (``resume``) — and yields them as Arrow tables with the cursor as
``_lakegate_position``. The table is checked before extraction starts, so an unreachable database,
refused credentials or a missing table fail with one line (never the URL's password).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dlt
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from dlt.extract import DltResource, DltSource
from dlt.sources.sql_database import sql_table

from connectors import Connector, ConnectorError, Kind, TablePart
from connectors.sql.config import SqlConfig, SqlDatabase, SqlTable
from lakegate.columns import POSITION, SOURCE

__all__ = ["SqlConfig", "SqlSourceError", "SqlTable", "connector", "discover_tables"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlSourceError(ConnectorError):
    """The database or table cannot be read; nothing was extracted."""


def _where(url: sa.engine.URL) -> str:
    return url.render_as_string(hide_password=True)


def _database_url(config: SqlDatabase) -> str:
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


def _engine(config: SqlDatabase) -> tuple[sa.Engine, str]:
    """An engine on ``config.url`` and where it points (for messages, without the password)."""
    try:
        url = sa.engine.make_url(_database_url(config))
    except sa.exc.ArgumentError:
        raise SqlSourceError("sql: config.url is not a SQLAlchemy URL (details withheld)") from None
    try:
        return sa.create_engine(url), f"sql {_where(url)}"
    except (ImportError, sa.exc.SQLAlchemyError) as exc:  # e.g. the dialect's driver is not installed
        raise SqlSourceError(f"sql {_where(url)}: cannot use this URL ({_first_line(exc, url)})") from None


def _first_line(exc: BaseException, url: sa.engine.URL) -> str:
    """The first line of a database error with the URL's password (also percent-encoded) masked."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else ""
    for secret in filter(None, {url.password, quote(str(url.password or ""), safe="")}):
        reason = reason.replace(str(secret), "***")
    return reason


def _unreadable(exc: sa.exc.SQLAlchemyError, engine: sa.Engine, at: str) -> SqlSourceError:
    return SqlSourceError(f"{at}: cannot read the database ({_first_line(exc, engine.url)})")


def _check(config: SqlConfig) -> sa.Engine:
    """An engine on ``config.url`` after checking the table and cursor exist."""
    assert config.table is not None  # a single-table config
    engine, at = _engine(config)
    try:
        with engine.connect() as conn:
            columns = {
                c["name"] for c in sa.inspect(conn).get_columns(config.table, schema=config.schema_name)
            }
    except sa.exc.NoSuchTableError:
        raise SqlSourceError(f"{at}: table {config.source.removeprefix('table:')} does not exist") from None
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc, engine, at) from None
    cursor = [] if config.full_refresh or config.cursor is None else [config.cursor]
    missing = [c for c in (*cursor, *config.primary_key) if c not in columns]
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
    if config.cursor is None or config.cursor not in table.column_names:  # full refresh, no cursor
        position = pa.nulls(table.num_rows, pa.int64())
    elif config.cursor_type == "timestamp":
        cursor = table.column(config.cursor)
        position = pc.cast(pc.cast(cursor, pa.timestamp("us")), pa.int64())
    else:
        position = pc.cast(table.column(config.cursor), pa.int64())
    return table.append_column(SOURCE, pa.array([config.source] * table.num_rows, pa.string())).append_column(
        POSITION, position
    )


def sql_resource(config: SqlConfig) -> DltResource | DltSource:
    """The dlt ``sql_table`` resource of ``config.table`` with lakegate's lineage columns; for ``tables``,
    a source of one such resource per table, named by dataset (plain-Python use: lakegate runs one
    pipeline per table)."""
    if config.tables:
        resources = [
            _table_resource(one).with_name(entry.dataset_name)
            for entry, one in zip(config.tables, config.split(), strict=True)
        ]
        return dlt.source(name="sql")(lambda: resources)()
    return _table_resource(config)


def _table_resource(config: SqlConfig) -> DltResource:
    assert config.table is not None
    engine = _check(config)
    incremental = None
    if not config.full_refresh:
        assert config.cursor is not None  # the config requires it without full_refresh
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
        backend=config.backend,
        backend_kwargs=_backend_kwargs(config, engine),
        chunk_size=config.chunk_size,
        primary_key=config.primary_key,
        reflection_level="full",
    )
    return resource.add_map(lambda table: _with_lineage(table, config))


def _backend_kwargs(config: SqlConfig, engine: sa.Engine) -> dict[str, Any]:
    """connectorx takes a plain URL (no ``+driver``) and streams Arrow batches of ``chunk_size`` rows."""
    if config.backend != "connectorx":
        return {}
    url = engine.url.set(drivername=engine.url.get_backend_name())
    return {
        "conn": url.render_as_string(hide_password=False),
        "return_type": "arrow_stream",
        "batch_size": config.chunk_size,
    }


def discover_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every table of the config's schema as a ``tables`` entry: its name and the primary key the
    database declares; ``full_refresh: true`` when it lacks the config's cursor column.

    Raises:
        SqlSourceError: the database cannot be read (one line, never the password).
    """
    database = SqlDatabase.model_validate({k: raw[k] for k in SqlDatabase.model_fields if k in raw})
    cursor = raw.get("cursor")
    engine, at = _engine(database)
    entries: list[dict[str, Any]] = []
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for name in sorted(inspector.get_table_names(schema=database.schema_name)):
                entry: dict[str, Any] = {"table": name}
                key = inspector.get_pk_constraint(name, schema=database.schema_name)["constrained_columns"]
                if key:
                    entry["primary_key"] = list(key)
                columns = {c["name"] for c in inspector.get_columns(name, schema=database.schema_name)}
                if cursor not in columns:
                    entry["full_refresh"] = True
                entries.append(entry)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc, engine, at) from None
    return entries


def _split(raw: Mapping[str, Any]) -> list[TablePart]:
    """A ``tables`` config as one single-table config per dataset (raw: ``{env: ...}`` stays unresolved)."""
    tables = raw.get("tables")
    if not isinstance(tables, list) or not tables:
        return []
    base = {k: v for k, v in raw.items() if k not in ("tables", "table")}
    parts = []
    for item in tables:
        entry = SqlTable.model_validate({"table": item} if isinstance(item, str) else item)
        own = entry.model_dump(exclude={"dataset"}, exclude_none=True)
        parts.append(
            TablePart(dataset=entry.dataset_name, config={**base, **own}, primary_key=entry.primary_key)
        )
    return parts


def _describe(config: SqlConfig) -> str:
    try:
        where = _where(sa.engine.make_url(config.url))
    except sa.exc.ArgumentError:  # ``${NAME}`` (shown for an ``{env: NAME}`` URL), or not a URL at all
        where = config.url if config.url.startswith("${") else "a database (URL not shown)"
    if config.tables:
        return f"{len(config.tables)} tables ({', '.join(t.table for t in config.tables)}) at {where}"
    return f"{config.source.removeprefix('table:')} at {where}"


connector: Connector[SqlConfig] = Connector(
    name="sql",
    kind=Kind.REPLICATION,
    config_model=SqlConfig,
    factory=sql_resource,
    description="Incremental replication of tables of any SQLAlchemy database (dlt sql_table, Arrow)",
    kinds=frozenset({"sql", "sqlalchemy"}),
    describe_source=_describe,
    positions=lambda config: [one.source for one in (config.split() if config.tables else [config])],
    storage_options="fsspec",
    split=_split,
    discover=discover_tables,
)
