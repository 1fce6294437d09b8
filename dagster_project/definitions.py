"""The Dagster code location: every pipeline under ``defs/`` plus the resources they need (no I/O at
import)."""

from pathlib import Path

import dagster as dg

from dagster_project.resources import default_resources


@dg.definitions
def defs() -> dg.Definitions:
    """Load each ``defs/<pipeline>/defs.yaml`` and bind the zone and PII-key resources."""
    pipelines = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(pipelines, dg.Definitions(resources=default_resources()))
