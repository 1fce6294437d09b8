"""Reserved ``_lakegate_*`` columns: the one place their names are spelled.

Connectors may add the first five to the Arrow tables they yield; the zone destination adds the lineage
columns to every committed row and writes quarantine records with the ``RULE``/``REASON``/``DATASET``
columns. Every other module imports the names from here.
"""

from typing import Final

PREFIX: Final = "_lakegate_"
"""Every reserved column starts with this; data columns never do."""

# Written by connectors.
SOURCE: Final = "_lakegate_source"
"""Where a row came from: a file URL, ``topic/partition``, a replication slot or table."""
POSITION: Final = "_lakegate_position"
"""The row's position within its source: data-row number, offset or LSN (int64)."""
REJECT_RULE: Final = "_lakegate_reject_rule"
"""Set on a row the connector could not parse: the rule it broke (e.g. ``csv_field_count``)."""
REJECT_REASON: Final = "_lakegate_reject_reason"
"""Human-readable reason a row was rejected; never contains the row's values."""
RAW_TEXT: Final = "_lakegate_raw"
"""The rejected record exactly as received (the destination vaults it when the dataset holds PII)."""

# Written by change-data-capture connectors (e.g. ``postgres_cdc``).
OP: Final = "_lakegate_op"
"""The change: ``r`` snapshot read, ``c`` insert, ``u`` update, ``d`` delete, ``t`` truncate."""
COMMITTED_AT: Final = "_lakegate_committed_at"
"""When the source committed the change (UTC); null for snapshot reads."""
UNCHANGED: Final = "_lakegate_unchanged"
"""Comma-separated columns the source did not resend (unchanged TOAST values): keep the stored value."""
OP_READ: Final = "r"
OP_INSERT: Final = "c"
OP_UPDATE: Final = "u"
OP_DELETE: Final = "d"
OP_TRUNCATE: Final = "t"

# Added by the zone destination to every committed row.
LOAD_ID: Final = "_lakegate_load_id"
RUN_ID: Final = "_lakegate_run_id"
INGESTED_AT: Final = "_lakegate_ingested_at"
INGEST_DATE: Final = "_lakegate_ingest_date"
"""The partition column of every zone table."""

# Quarantine records.
RULE: Final = "_lakegate_rule"
REASON: Final = "_lakegate_reason"
DATASET: Final = "_lakegate_dataset"

# Scratch columns of transforms (never stored).
CAST_ERRORS: Final = "_lakegate_cast_errors"
ROW_ID: Final = "_lakegate_row"

CONNECTOR_COLUMNS: Final = (SOURCE, POSITION, REJECT_RULE, REJECT_REASON, RAW_TEXT)
CDC_COLUMNS: Final = (OP, COMMITTED_AT, UNCHANGED)
LINEAGE_COLUMNS: Final = (LOAD_ID, RUN_ID, INGESTED_AT, INGEST_DATE)
REJECT_COLUMNS: Final = (REJECT_RULE, REJECT_REASON, RAW_TEXT)
