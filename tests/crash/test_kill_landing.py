"""A run SIGKILLed after its data commit and before it archived the landing files: the next run (on this
machine or a fresh one, without dlt's folder) archives them without ingesting them again."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness is shared with benchmarks/kill_campaign.py
from harness import LAKEGATE, RUN_STARTED, leftovers, phase_reached, standard_ledger
from kill_inputs import orders_input, scenarios

from zones import ZoneName, load_config, open_zone
from zones.retention import archive_url

# Runs `lakegate run orders` in this process, SIGKILLed at the moment it would archive what it committed.
KILLED_AT_ARCHIVE = textwrap.dedent(
    """
    import os, signal, sys
    import pipelines._flow as flow
    flow.acknowledge = lambda spec, config: os.kill(os.getpid(), signal.SIGKILL)
    from dagster_project.cli import main
    sys.exit(main(["run", "orders"]))
    """
)


@pytest.mark.parametrize("fresh_machine", [False, True], ids=["same-machine", "fresh-machine"])
def test_a_kill_between_commit_and_archive_archives_without_ingesting_again(
    lakegate_home: Path, tmp_path: Path, fresh_machine: bool
) -> None:
    scenario = scenarios(scale=0.05)["orders"]
    expected = orders_input(2_000)
    config = load_config()
    drop = Path(open_zone(ZoneName.LANDING, config).config.url.removeprefix("file://")) / "sales" / "orders"
    dropped = sorted(p.name for p in drop.glob("*.csv"))
    killed_log = tmp_path / "killed.log"
    with killed_log.open("w") as out:
        status = subprocess.run(
            [sys.executable, "-c", KILLED_AT_ARCHIVE], stdout=out, stderr=subprocess.STDOUT, timeout=120
        ).returncode
    assert status == -signal.SIGKILL, killed_log.read_text()[-2000:]
    raw = open_zone(ZoneName.RAW, config).delta_table("sales", "orders")
    assert raw is not None, "the killed run committed its data"
    committed_version = raw.version()
    assert sorted(p.name for p in drop.glob("*.csv")) == dropped, "killed before the archive move"
    if fresh_machine:
        shutil.rmtree(lakegate_home / "dlt")

    recovery_log = tmp_path / "recovery.log"
    with recovery_log.open("w") as out:
        status = subprocess.run(
            [LAKEGATE, "run", "orders"], stdout=out, stderr=subprocess.STDOUT, timeout=180
        ).returncode
    assert status == 0, recovery_log.read_text()[-2000:]

    raw = open_zone(ZoneName.RAW, config).delta_table("sales", "orders")
    assert raw is not None and raw.version() == committed_version, "the recovery ingested the files again"
    assert not list(drop.glob("*.csv")), "the recovery archived the committed files"
    archive = Path(archive_url(config, "sales", "orders").removeprefix("file://"))
    assert sorted(p.name for p in archive.rglob("*.csv")) == dropped
    assert standard_ledger(scenario, expected) == []
    found = RUN_STARTED.search(killed_log.read_text())
    killed_run, phase = phase_reached(killed_log.read_text())
    assert found and leftovers(scenario, killed_run, phase) == []
