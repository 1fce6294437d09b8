"""Connections to the source and the one-line errors they turn into; credentials are never echoed."""

from __future__ import annotations

from urllib.parse import quote

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from connectors import ConnectorError


class CdcError(ConnectorError):
    """A PostgreSQL source problem; nothing was read or acknowledged."""


class SourceUnreachableError(CdcError):
    """The server does not answer (host, port, network)."""


class CredentialsError(CdcError):
    """The server refused the role or its password."""


class SetupError(CdcError):
    """The source is not ready for logical replication (wal_level, table, replica identity, privileges)."""


class SlotInUseError(CdcError):
    """Another consumer holds the replication slot."""


# Plain-text session settings: values are decoded as text in one, predictable format.
_SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c IntervalStyle=iso_8601"


def where(dsn: str) -> str:
    """``user@host:port/dbname`` of a DSN, never its password (``a DSN`` when it does not parse)."""
    try:
        parts = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "a DSN that does not parse"
    host = parts.get("host", "localhost")
    return f"{parts.get('user', '?')}@{host}:{parts.get('port', '5432')}/{parts.get('dbname', '?')}"


def scrub(text: str, dsn: str) -> str:
    """``text`` with the DSN's password removed, also in its percent-encoded and quoted forms."""
    try:
        password = psycopg2.extensions.parse_dsn(dsn).get("password")
    except psycopg2.ProgrammingError:
        return "(details withheld: the DSN does not parse)"
    for secret in filter(None, {password, quote(password or "", safe=""), quote(password or "")}):
        text = text.replace(secret, "***")
    return text


# What libpq says when the server goes away under an open connection (an immediate shutdown, a crash,
# pg_terminate_backend, a restart).
_CONNECTION_LOST = (
    "no message from the libpq",
    "server closed the connection",
    "terminating connection",
    "connection already closed",
    "ssl syscall error",
)


def explain(exc: psycopg2.Error, dsn: str, doing: str) -> CdcError:
    """The one-line error for a psycopg2 failure while ``doing`` something."""
    at = where(dsn)
    detail = scrub((exc.pgerror or str(exc)).strip().splitlines()[0] if str(exc).strip() else "", dsn)
    detail = detail.removeprefix("ERROR:").removeprefix("FATAL:").strip()
    lower = detail.lower()
    if isinstance(exc, psycopg2.errors.ObjectInUse) or "is active for pid" in lower:
        return SlotInUseError(f"postgres_cdc {at}: {detail}; another consumer is reading the slot")
    if (
        "password authentication failed" in lower
        or "no pg_hba.conf entry" in lower
        or ("role" in lower and "does not exist" in lower)
    ):
        return CredentialsError(f"postgres_cdc {at}: the server refused the credentials ({detail})")
    if isinstance(exc, psycopg2.OperationalError) and (
        "connection refused" in lower or "could not translate host" in lower or "timeout" in lower
    ):
        return SourceUnreachableError(f"postgres_cdc {at}: server unreachable ({detail})")
    if any(sign in lower for sign in _CONNECTION_LOST):
        return SourceUnreachableError(
            f"postgres_cdc {at}: the server closed the connection while {doing} (stopped or restarted?); "
            "nothing uncommitted was acknowledged: the next run resumes after the last committed change"
        )
    if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
        return SourceUnreachableError(f"postgres_cdc {at}: cannot connect ({detail})")
    return CdcError(f"postgres_cdc {at}: {doing} failed: {detail}")


def connect(dsn: str) -> psycopg2.extensions.connection:
    """A plain connection in UTC/ISO text formats."""
    try:
        conn = psycopg2.connect(dsn, options=_SESSION, connect_timeout=10)
    except psycopg2.Error as exc:
        raise explain(exc, dsn, "connecting") from None
    conn.autocommit = True
    return conn


def connect_replication(dsn: str) -> psycopg2.extras.LogicalReplicationConnection:
    """A logical replication connection (walsender) in UTC/ISO text formats."""
    try:
        return psycopg2.connect(
            dsn,
            options=_SESSION,
            connect_timeout=10,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
        )
    except psycopg2.Error as exc:
        raise explain(exc, dsn, "opening a replication connection") from None
