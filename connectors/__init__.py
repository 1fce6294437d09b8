"""lakegate connectors: named factories of dlt sources/resources that yield Arrow tables.

Usable from plain Python::

    from connectors import get_connector
    resource = get_connector("files").build({"url": "file:///drops/*.csv"})
"""

from connectors._contract import (
    POSITION,
    RAW_TEXT,
    REJECT_REASON,
    REJECT_RULE,
    SOURCE,
    Connector,
    ConnectorConfig,
    ConnectorConfigError,
    Kind,
    plain_strings,
)
from connectors._registry import (
    ENTRY_POINT_GROUP,
    ConnectorRegistrationError,
    UnknownConnectorError,
    connector,
    connector_names,
    get_connector,
    register_connector,
    registered,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "POSITION",
    "RAW_TEXT",
    "REJECT_REASON",
    "REJECT_RULE",
    "SOURCE",
    "Connector",
    "ConnectorConfig",
    "ConnectorConfigError",
    "ConnectorRegistrationError",
    "Kind",
    "UnknownConnectorError",
    "connector",
    "connector_names",
    "get_connector",
    "plain_strings",
    "register_connector",
    "registered",
]
