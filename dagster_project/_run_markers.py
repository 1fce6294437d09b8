"""Markers of the CLI runs in flight: ``$DAGSTER_HOME/lakegate-runs/<job>/<run id>.json`` holds the process
that executes the run, written before it starts and removed when it ends.

A run killed with SIGKILL leaves its marker behind. The cheap "nothing new" check of ``lakegate run`` then
starts a real run anyway, because only a real run reclaims the dead run's pool slots and marks it failed
(:mod:`dagster_project.liveness`); that run also removes the markers of dead processes. No Dagster import:
the check must stay cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from dagster_project._process import RunProcess


def _folder(job_name: str) -> Path:
    return Path(os.environ.get("DAGSTER_HOME", ".")) / "lakegate-runs" / job_name


@contextmanager
def marked(job_name: str, run_id: str) -> Iterator[None]:
    """Hold a marker for run ``run_id`` of ``job_name`` while the block runs."""
    folder = _folder(job_name)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{run_id}.json"
    marker.write_text(json.dumps(asdict(RunProcess.current())))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def unfinished(job_name: str) -> bool:
    """Whether some CLI run of ``job_name`` started and never ended (alive, or killed)."""
    folder = _folder(job_name)
    return folder.is_dir() and any(folder.glob("*.json"))


def forget_dead(job_name: str) -> None:
    """Remove the markers of runs whose process is provably gone (their runs were just reclaimed)."""
    for marker in _folder(job_name).glob("*.json"):
        try:
            process = RunProcess(**json.loads(marker.read_text()))
        except (OSError, ValueError, TypeError):
            marker.unlink(missing_ok=True)  # unreadable: a marker torn by the kill itself
            continue
        if process.is_dead():
            marker.unlink(missing_ok=True)
