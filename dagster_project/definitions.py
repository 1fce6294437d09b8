"""The Dagster code location: every pipeline under ``defs/`` plus the resources they need (no I/O at
import; a broken ``defs.yaml`` is shown as such and never hides the other pipelines)."""

from pathlib import Path

import dagster as dg

from dagster_project.backups import backup_definitions
from dagster_project.maintenance import maintenance_definitions
from dagster_project.pipeline_defs import pipeline_definitions
from dagster_project.resources import ZonesResource, default_resources
from pipelines import read_defs_folder
from pipelines.retention import Declared

DEFS_FOLDER = Path(__file__).parent / "defs"


def definitions_for(folder: Path) -> dg.Definitions:
    """Load each ``<folder>/<pipeline>/defs.yaml``, add the retention sensors, the maintenance job and
    the zones' backup schedules, and bind the zone and PII-key resources (each file is read once)."""
    read = read_defs_folder(folder)
    declared = [Declared(file, spec) for file, spec, problems in read if spec is not None and not problems]
    return dg.Definitions.merge(
        *pipeline_definitions(read),
        maintenance_definitions(declared),
        backup_definitions(ZonesResource()),
        dg.Definitions(resources=default_resources()),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The shipped code location: :func:`definitions_for` the ``defs/`` folder."""
    return definitions_for(DEFS_FOLDER)
