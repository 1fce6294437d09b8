"""The Dagster code location: every pipeline under ``defs/``, nothing else (no I/O at import)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load each ``defs/<pipeline>/defs.yaml``."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
