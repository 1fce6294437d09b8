"""Read-only registry of connectors, fed by the ``@register_connector`` decorator and by the
``lakegate.connectors`` entry-point group (loaded lazily, on first lookup)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from connectors._contract import Connector

ENTRY_POINT_GROUP = "lakegate.connectors"

# Built-ins are imported lazily: looking one up must not import every connector's dependencies.
_BUILTINS: dict[str, str] = {"files": "connectors.files"}

_registered: dict[str, Connector[Any]] = {}
_entry_points_loaded = False


class UnknownConnectorError(LookupError):
    """Raised for a connector name nobody registered; the message lists the known names."""


class ConnectorRegistrationError(ValueError):
    """Raised when a registration would silently replace another connector."""


def register_connector(connector: Connector[Any]) -> Connector[Any]:
    """Register a connector under its name; a taken name (built-in or not) is refused."""
    builtin_module = _BUILTINS.get(connector.name)
    if connector.name in _registered or (
        builtin_module
        and connector.factory.__module__ != builtin_module
        and not connector.factory.__module__.startswith(builtin_module + ".")
    ):
        raise ConnectorRegistrationError(
            f"a connector named '{connector.name}' is already registered; pick another name"
        )
    _registered[connector.name] = connector
    return connector


def connector(name: str) -> Callable[[Callable[[], Connector[Any]]], Connector[Any]]:
    """Decorator form: ``@connector("name")`` on a zero-argument function returning the Connector."""

    def wrap(build: Callable[[], Connector[Any]]) -> Connector[Any]:
        made = build()
        if made.name != name:
            raise ConnectorRegistrationError(f"@connector('{name}') returned a connector named '{made.name}'")
        return register_connector(made)

    return wrap


def get_connector(name: str) -> Connector[Any]:
    """Return the connector registered as ``name``.

    Raises:
        UnknownConnectorError: listing every known connector name.
    """
    if name not in _registered and name in _BUILTINS:
        importlib.import_module(_BUILTINS[name])
    if name not in _registered and _is_local_package(name):
        # A connector scaffolded into this package (`lakegate new connector`) registers on import.
        importlib.import_module(f"connectors.{name}")
    if name not in _registered:
        _load_entry_points()
    try:
        return _registered[name]
    except KeyError:
        known = ", ".join(connector_names()) or "none"
        raise UnknownConnectorError(f"unknown connector '{name}'; known connectors: {known}") from None


def _is_local_package(name: str) -> bool:
    return name.isidentifier() and importlib.util.find_spec(f"connectors.{name}") is not None


def connector_names() -> tuple[str, ...]:
    """Every known connector name (built-ins, decorated and entry points), sorted."""
    _load_entry_points()
    return tuple(sorted(set(_BUILTINS) | set(_registered)))


def registered() -> Mapping[str, Connector[Any]]:
    """A read-only view of the connectors loaded so far."""
    return MappingProxyType(_registered)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    broken: list[str] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _registered:
            continue
        try:
            loaded = ep.load()
        except Exception as exc:  # one broken plug-in must not hide the others
            broken.append(f"'{ep.name} = {ep.value}' failed to load: {exc}")
            continue
        if not isinstance(loaded, Connector) or loaded.name != ep.name:
            broken.append(f"'{ep.name} = {ep.value}' is not a Connector named '{ep.name}'")
        elif loaded.name not in _registered:
            register_connector(loaded)
    _entry_points_loaded = True
    if broken:
        raise ConnectorRegistrationError(f"entry point {'; '.join(broken)} ({ENTRY_POINT_GROUP})")
