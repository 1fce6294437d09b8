"""Guarantees 1 and 9 for a load package of several jobs: dlt loads a package's jobs in no fixed order,
but an ordered source commits each job's highest position with its rows. A run SIGKILLed after one
job's commit, resumed on a machine without dlt's folder, must neither lose nor repeat a record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pytest
from dlt.extract import DltResource
from pydantic import Field

from connectors import REGISTRY, Connector, ConnectorConfig, Kind, register_connector
from lakegate.columns import POSITION, SOURCE
from pipelines import PipelineSpec, ingest
from zones import ZoneName, load_config, open_zone


class LogConfig(ConnectorConfig):
    path: str
    resume: dict[str, int] = Field(default_factory=dict)


def _log_resource(config: LogConfig) -> DltResource:
    """Reads a JSON-lines log in two batches; the second adds a column, so dlt writes it to a second load
    file: one package, two jobs, the second holding the later positions."""

    @dlt.resource(name="log")
    def records() -> Iterator[pa.Table]:
        after = config.resume.get("log", 0)
        new = [r for r in map(json.loads, Path(config.path).read_text().splitlines()) if r["pos"] > after]
        half = len(new) // 2
        for part, extra in ((new[:half], False), (new[half:], True)):
            if not part:
                continue
            columns = {
                "value": pa.array([r["value"] for r in part], pa.string()),
                SOURCE: pa.array(["log"] * len(part), pa.string()),
                POSITION: pa.array([r["pos"] for r in part], pa.int64()),
            }
            if extra:
                columns["note"] = pa.array(["late"] * len(part), pa.string())
            yield pa.table(columns)

    return records


def register() -> Connector[LogConfig]:
    return register_connector(
        Connector(
            name="test_split_log",
            kind=Kind.STREAMING,
            config_model=LogConfig,
            factory=_log_resource,
            positions=lambda config: ["log"],
        )
    )


def spec_for(log: Path) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "events",
            "domain": "ops",
            "pattern": "EL",
            "connector": {"type": "test_split_log", "config": {"path": str(log)}},
        }
    )


# One ingest in a child process. dlt is handed the package's jobs latest positions first (its order is
# not fixed; this is the adversarial one), and the process is SIGKILLed right after the first commit
# of a job reached the raw zone and its audit log.
KILLED_AFTER_FIRST_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pyarrow.parquet as pq
    from dlt.common.storages.load_package import PackageStorage
    sys.path.insert(0, {tests!r})
    import test_ordered_jobs as t
    import zones.destination as destination
    from lakegate.columns import POSITION

    listed = PackageStorage.list_new_jobs
    def latest_first(self, load_id):
        def highest(rel):
            path = Path(self.storage.make_full_path(rel))
            return pq.read_table(path, columns=[POSITION])[POSITION].to_pylist()[-1]
        return sorted(listed(self, load_id), key=highest, reverse=True)
    PackageStorage.list_new_jobs = latest_first

    audit = destination._JobWriter._audit
    def audit_then_die(self, zone, *args, **kwargs):
        audit(self, zone, *args, **kwargs)
        if zone.name.value == "raw":
            os.kill(os.getpid(), signal.SIGKILL)
    destination._JobWriter._audit = audit_then_die

    t.register()
    t.ingest(t.spec_for(Path({log!r})), run_id="killed")
    """
)


@pytest.fixture
def split_log(monkeypatch: pytest.MonkeyPatch) -> Connector[LogConfig]:
    monkeypatch.setattr(REGISTRY, "_loaded", dict(REGISTRY._loaded))
    monkeypatch.setattr(REGISTRY, "_in_process", set(REGISTRY._in_process))
    return register()


def _write(log: Path, first: int, last: int) -> None:
    with log.open("a") as handle:
        for pos in range(first, last + 1):
            handle.write(json.dumps({"pos": pos, "value": f"v{pos}"}) + "\n")


def test_a_package_of_two_jobs_commits_them_in_position_order(
    split_log: Connector[LogConfig], lakegate_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    _write(log, 1, 40)
    script = KILLED_AFTER_FIRST_COMMIT.format(tests=str(Path(__file__).parent), log=str(log))
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    config = load_config()
    raw = open_zone(ZoneName.RAW, config)
    committed_before_kill = sorted(raw.read("ops", "events")[POSITION].to_list())

    shutil.rmtree(lakegate_home / "dlt")  # another machine: no local working folder
    _write(log, 41, 50)
    report = ingest(spec_for(log), run_id="resumed")
    assert sorted(raw.read("ops", "events")[POSITION].to_list()) == list(range(1, 51)), (
        "every record exactly once"
    )
    assert report.input_rows == 30, "resumed right after the committed job"
    assert ingest(spec_for(log), run_id="idle").input_rows == 0
    assert committed_before_kill == list(range(1, 21)), "the job with the earlier positions went first"
