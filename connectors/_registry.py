"""The connector registry: built-ins, local packages (``connectors/<name>``), entry points, in-process.

See :mod:`lakegate.registry` for how names are resolved; this module only names the built-ins and the
errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors._contract import Connector, ConnectorError
from lakegate.registry import Reference, RegistrationError, Registry, UnknownNameError

ENTRY_POINT_GROUP = "lakegate.connectors"


class UnknownConnectorError(ConnectorError, UnknownNameError):
    """Raised for a connector name nobody registered; the message lists the known names."""


class ConnectorRegistrationError(ConnectorError, RegistrationError):
    """A registration would replace another connector, or a plug-in does not load a Connector."""


def _validate(name: str, obj: object) -> Connector[Any]:
    if not isinstance(obj, Connector):
        raise ConnectorRegistrationError(
            f"connector '{name}' resolves to a {type(obj).__name__}, not a connectors.Connector"
        )
    if obj.name != name:
        raise ConnectorRegistrationError(f"connector '{name}' resolves to a connector named '{obj.name}'")
    return obj


REGISTRY: Registry[Connector[Any]] = Registry(
    "connector",
    _validate,
    builtins={
        "files": Reference("connectors.files:connector"),
        "kafka": Reference("connectors.kafka:connector"),
        "sql": Reference("connectors.sql:connector", install_hint="pip install sqlalchemy"),
        "postgres_cdc": Reference(
            "connectors.postgres_cdc:connector", install_hint="pip install psycopg2-binary"
        ),
    },
    entry_point_group=ENTRY_POINT_GROUP,
    local_package="connectors",
    attribute="connector",
    unknown_error=UnknownConnectorError,
    broken_error=ConnectorRegistrationError,
)


def register_connector(connector: Connector[Any]) -> Connector[Any]:
    """Register a connector in this process under its name; a taken name (built-in or not) is refused."""
    return REGISTRY.register(connector.name, connector)


def connector(name: str) -> Callable[[Callable[[], Connector[Any]]], Connector[Any]]:
    """Decorator form: ``@connector("name")`` on a zero-argument function returning the Connector."""

    def wrap(build: Callable[[], Connector[Any]]) -> Connector[Any]:
        return REGISTRY.register(name, build())

    return wrap


def get_connector(name: str) -> Connector[Any]:
    """The connector registered as ``name``, imported on first use.

    Raises:
        UnknownConnectorError: listing every known connector and the closest name.
        ConnectorRegistrationError: the module or entry point behind ``name`` is broken.
    """
    return REGISTRY.get(name)


def connector_names() -> tuple[str, ...]:
    """Every known connector name: built-in, local package, entry point and registered, sorted."""
    return REGISTRY.names()
