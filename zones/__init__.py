"""lakegate zones: zone config, Delta storage, the single write path (dlt destination), PII, audit.

Usable without Dagster::

    from zones import LoadTarget, DatasetSpec, lakegate_destination, load_config
"""

import lakegate  # noqa: F401  (first: it picks Arrow's allocator before pyarrow loads)
from zones._durations import parse_duration
from zones._log import appended_since
from zones._records import DatasetSpec
from zones.audit import AuditRecord, read_audit
from zones.backup import BackedUp, BackupError, Restored, backup_zone, restore
from zones.config import (
    Hold,
    LakegateConfig,
    Location,
    ZoneConfig,
    ZoneConfigError,
    ZoneName,
    lakegate_home,
    load_config,
    retention_conflict,
)
from zones.destination import LoadReport, LoadTarget, ZoneWriteError, lakegate_destination, lineage_stamp
from zones.errors import ZoneStorageError
from zones.pii import PII_KEY_ENV, PiiKeyError, PiiMethod, Tokenizer
from zones.pipeline import PipelineBusyError, lakegate_pipeline, pipeline_lock
from zones.positions import committed_position, committed_positions, position_app_id, record_position
from zones.retention import (
    Applied,
    DatasetPlan,
    Policy,
    RetentionError,
    apply_dataset,
    plan_dataset,
    read_retention_audit,
)
from zones.storage import TableHandles, Zone, open_zone

__all__ = [
    "PII_KEY_ENV",
    "Applied",
    "AuditRecord",
    "BackedUp",
    "BackupError",
    "DatasetPlan",
    "DatasetSpec",
    "Hold",
    "LakegateConfig",
    "LoadReport",
    "LoadTarget",
    "Location",
    "PiiKeyError",
    "PiiMethod",
    "PipelineBusyError",
    "Policy",
    "Restored",
    "RetentionError",
    "TableHandles",
    "Tokenizer",
    "Zone",
    "ZoneConfig",
    "ZoneConfigError",
    "ZoneName",
    "ZoneStorageError",
    "ZoneWriteError",
    "appended_since",
    "apply_dataset",
    "backup_zone",
    "committed_position",
    "committed_positions",
    "lakegate_destination",
    "lakegate_home",
    "lakegate_pipeline",
    "lineage_stamp",
    "load_config",
    "open_zone",
    "parse_duration",
    "pipeline_lock",
    "plan_dataset",
    "position_app_id",
    "read_audit",
    "read_retention_audit",
    "record_position",
    "restore",
    "retention_conflict",
]
