"""lakegate zones: zone config, Delta storage, the single write path (dlt destination), PII, audit.

Usable without Dagster::

    from zones import LoadTarget, DatasetSpec, lakegate_destination, load_config
"""

from zones._records import DatasetSpec
from zones.audit import AuditRecord, read_audit
from zones.config import LakegateConfig, ZoneConfig, ZoneConfigError, ZoneName, lakegate_home, load_config
from zones.destination import (
    LoadReport,
    LoadTarget,
    ZoneWriteError,
    committed_position,
    committed_positions,
    lakegate_destination,
    position_app_id,
    record_position,
)
from zones.pii import PII_KEY_ENV, PiiKeyError, PiiMethod, Tokenizer
from zones.pipeline import PipelineBusyError, lakegate_pipeline
from zones.storage import Zone, open_zone

__all__ = [
    "PII_KEY_ENV",
    "AuditRecord",
    "DatasetSpec",
    "LakegateConfig",
    "LoadReport",
    "LoadTarget",
    "PiiKeyError",
    "PiiMethod",
    "PipelineBusyError",
    "Tokenizer",
    "Zone",
    "ZoneConfig",
    "ZoneConfigError",
    "ZoneName",
    "ZoneWriteError",
    "committed_position",
    "committed_positions",
    "lakegate_destination",
    "lakegate_home",
    "lakegate_pipeline",
    "load_config",
    "open_zone",
    "position_app_id",
    "read_audit",
    "record_position",
]
