"""lakegate connectors: named factories of dlt sources/resources that yield Arrow tables.

Usable from plain Python::

    from connectors import get_connector
    resource = get_connector("files").build({"url": "file:///drops/*.csv"})

The reserved columns connectors add live in :mod:`lakegate.columns`.
"""

import lakegate  # noqa: F401  (first: it picks Arrow's allocator before pyarrow loads)
from connectors._contract import (
    Connector,
    ConnectorConfig,
    ConnectorConfigError,
    ConnectorError,
    Kind,
    StorageDialect,
    TablePart,
    plain_strings,
)
from connectors._registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    ConnectorRegistrationError,
    UnknownConnectorError,
    connector,
    connector_names,
    get_connector,
    register_connector,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRY",
    "Connector",
    "ConnectorConfig",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorRegistrationError",
    "Kind",
    "StorageDialect",
    "TablePart",
    "UnknownConnectorError",
    "connector",
    "connector_names",
    "get_connector",
    "plain_strings",
    "register_connector",
]
