"""lakegate sends nothing anywhere: dlt's anonymous telemetry stays off unless the user turns it on."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import zones, dlt
from dlt.common.runtime import anon_tracker
dlt.config["load.delete_completed_jobs"] = True  # dlt's first configuration access starts its telemetry
print(anon_tracker._ANON_TRACKER_ENDPOINT)
"""


def endpoint(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME__")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_dlt_telemetry_is_off_by_default_and_on_only_when_asked() -> None:
    assert endpoint() == "None"
    assert endpoint(RUNTIME__DLTHUB_TELEMETRY="true").startswith("https://")
