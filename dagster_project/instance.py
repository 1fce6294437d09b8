"""The local Dagster instance lakegate's CLI uses: ``$LAKEGATE_HOME/dagster`` unless DAGSTER_HOME is set."""

from __future__ import annotations

import os
from pathlib import Path

from zones import lakegate_home

_DAGSTER_YAML = """\
telemetry:
  enabled: false
python_logs:
  python_log_level: INFO
  managed_python_loggers: [lakegate]
concurrency:
  pools:
    default_limit: 1
# Under `lakegate serve` the daemon fails runs stuck starting or canceling and frees slots a finished run
# still holds; `lakegate run` reclaims runs whose process died itself (dagster_project/liveness.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 120
  free_slots_after_run_end_seconds: 30
"""


def prepare() -> Path:
    """Point ``LAKEGATE_HOME`` and ``DAGSTER_HOME`` at absolute folders and write ``dagster.yaml`` once."""
    home = lakegate_home()
    # dlt logs each failed job with its traceback; lakegate reports the failure itself, in one line.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    # dlt swallows the first SIGTERM/SIGINT during normalize and load (it hopes to drain its job pool
    # and forgets the signal once the step ends), so a stopped run went on to the end. Left to Dagster,
    # the signal stops the step at once; a stop anywhere is no worse than a kill, which the kill harness
    # (tests/crash) shows never costs the ledger.
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    os.environ["LAKEGATE_HOME"] = str(home)
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(home / "dagster")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(_DAGSTER_YAML)
    return dagster_home
