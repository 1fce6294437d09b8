"""The pipeline core: what a pipeline declares and how its steps run, usable without Dagster.

Usable from a plain Python script::

    from pipelines import curate, ingest, load_spec
    spec = load_spec("dagster_project/defs/orders/defs.yaml")
    ingest(spec, run_id="manual-1")
    curate(spec, run_id="manual-1")

``dagster_project`` turns the same specs, steps and checks into Dagster definitions.
"""

import lakegate  # noqa: F401  (first: it picks Arrow's allocator before pyarrow loads)
from pipelines._flow import connector_config, resumed_config
from pipelines._history import history_counts, history_dataset
from pipelines._values import for_display
from pipelines.checks import (
    CHECKS,
    CheckDef,
    CheckInput,
    CheckOutcome,
    Step,
    Target,
    checks_for,
    table_check,
    zone_of,
)
from pipelines.checks import REGISTRY as CHECK_REGISTRY
from pipelines.errors import PipelineError, PipelineSpecError, TableRequestError, UnknownPipelineError
from pipelines.fanout import discover_tables, expand, write_tables
from pipelines.spec import History, Pattern, PipelineSpec, check_spec
from pipelines.steps import CurateResult, curate, history, ingest
from pipelines.validation import (
    check_defs_file,
    check_defs_folder,
    load_spec,
    read_defs_file,
    read_defs_folder,
)

__all__ = [
    "CHECKS",
    "CHECK_REGISTRY",
    "CheckDef",
    "CheckInput",
    "CheckOutcome",
    "CurateResult",
    "History",
    "Pattern",
    "PipelineError",
    "PipelineSpec",
    "PipelineSpecError",
    "Step",
    "TableRequestError",
    "Target",
    "UnknownPipelineError",
    "check_defs_file",
    "check_defs_folder",
    "check_spec",
    "checks_for",
    "connector_config",
    "curate",
    "discover_tables",
    "expand",
    "for_display",
    "history",
    "history_counts",
    "history_dataset",
    "ingest",
    "load_spec",
    "read_defs_file",
    "read_defs_folder",
    "resumed_config",
    "table_check",
    "write_tables",
    "zone_of",
]
