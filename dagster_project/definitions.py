"""The Dagster code location: every pipeline under ``defs/`` plus the resources they need (no I/O at
import; a broken ``defs.yaml`` is shown as such and never hides the other pipelines)."""

import os
from pathlib import Path

import dagster as dg

from dagster_project import _gc  # first: its policy covers the imports below
from dagster_project.backups import backup_definitions
from dagster_project.maintenance import maintenance_definitions
from dagster_project.pipeline_defs import pipeline_definitions
from dagster_project.resources import ZonesResource, default_resources
from pipelines import read_defs_folder
from pipelines.retention import Declared

DEFS_FOLDER = Path(__file__).parent / "defs"
_gc.settle()  # imported modules live as long as the process


def definitions_for(folder: Path) -> dg.Definitions:
    """Load each ``<folder>/<pipeline>/defs.yaml``, add the retention sensors, the maintenance job and
    the zones' backup schedules, and bind the zone and PII-key resources (each file is read once).

    A code server calls this twice while it loads (to find the definitions, then to rebuild them):
    the second call reuses the first one's result while no ``defs.yaml``, zone config file or
    environment variable has changed.
    """
    zones_file = Path(os.environ.get("LAKEGATE_CONFIG") or "lakegate.yaml").resolve()
    fingerprint = (
        str(folder.resolve()),
        tuple(_stamp(file) for file in [zones_file, *sorted(folder.glob("*/defs.yaml"))]),
        tuple(sorted(os.environ.items())),
    )
    if _LAST is not None and _LAST[0] == fingerprint:
        return _LAST[1]
    if _LAST is not None:
        _gc.release()  # the definitions being replaced may be collected once dropped
    read = read_defs_folder(folder)
    declared = [Declared(file, spec) for file, spec, problems in read if spec is not None and not problems]
    built = dg.Definitions.merge(
        *pipeline_definitions(read),
        maintenance_definitions(declared),
        backup_definitions(ZonesResource()),
        dg.Definitions(resources=default_resources()),
    )
    globals()["_LAST"] = (fingerprint, built)
    _gc.settle()  # the definitions live as long as the code location
    return built


_LAST: tuple[object, dg.Definitions] | None = None


def _stamp(file: Path) -> tuple[str, int, int]:
    try:
        stat = file.stat()
    except OSError:
        return (str(file), -1, -1)
    return (str(file), stat.st_mtime_ns, stat.st_size)


@dg.definitions
def defs() -> dg.Definitions:
    """The shipped code location: :func:`definitions_for` the ``defs/`` folder."""
    return definitions_for(DEFS_FOLDER)
