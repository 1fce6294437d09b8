"""Reserved ``_lakegate_*`` columns.

The first five are written by connectors (``connectors._contract`` defines the same names; a test keeps
the two in step); the rest are added by the zone destination.
"""

SOURCE = "_lakegate_source"
POSITION = "_lakegate_position"
REJECT_RULE = "_lakegate_reject_rule"
REJECT_REASON = "_lakegate_reject_reason"
RAW_TEXT = "_lakegate_raw"

LOAD_ID = "_lakegate_load_id"
RUN_ID = "_lakegate_run_id"
INGESTED_AT = "_lakegate_ingested_at"
INGEST_DATE = "_lakegate_ingest_date"

# Quarantine records.
RULE = "_lakegate_rule"
REASON = "_lakegate_reason"
DATASET = "_lakegate_dataset"

PREFIX = "_lakegate_"
