"""``make run``'s streaming demo: ``lakegate serve --demo-stream`` starts a broker and a producer beside
the UI, the clickstream stream sensor launches runs that fill curated, and Ctrl-C leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port
from zones import ZoneName, open_zone

pytestmark = [pytest.mark.kafka, pytest.mark.ui]
ROOT = Path(__file__).resolve().parents[1]


def _curated_rows() -> int:
    try:
        return open_zone(ZoneName.CURATED).read("web", "clickstream").height
    except Exception:  # not created yet (or being created): no rows to count
        return 0


def test_serve_demo_stream_launches_runs_and_ctrl_c_stops_everything(lakegate_home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [
        sys.executable,
        "-m",
        "dagster_project.cli",
        "serve",
        "--port",
        str(free_port()),
        "--demo-stream",
    ]
    log = lakegate_home.parent / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while _curated_rows() == 0:
            assert serve.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, (
                "no clickstream run filled curated:\n" + log.read_text()[-3000:]
            )
            time.sleep(1)
        started = psutil.Process(serve.pid).children(recursive=True)
        names = " ".join(_command(p) for p in started)  # (a run worker may just have ended)
        assert "tansu broker" in names and "dagster" in names
        serve.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert serve.wait(timeout=60) == 0
        time.sleep(1)
        left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"orphans: {[_command(p) for p in left]}"
        assert "stopping the UI, the demo producer and the broker" in log.read_text()
    finally:
        for process in [*started, psutil.Process(serve.pid) if serve.poll() is None else None]:
            if process is not None and process.is_running():
                process.kill()


def _command(process: psutil.Process) -> str:
    """The command line of ``process``; empty once it has ended (gone, or a zombie not yet reaped)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""
