"""Ordered sources resume from the positions committed in the zones, not from the local working folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pytest
from dlt.extract import DltResource
from pydantic import Field

from connectors import REGISTRY, Connector, ConnectorConfig, ConnectorError, Kind, register_connector
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE
from pipelines import PipelineSpec, ingest
from zones import ZoneName, committed_positions, load_config, open_zone


class LogConfig(ConnectorConfig):
    path: str
    resume: dict[str, int] = Field(default_factory=dict)


def _log_resource(config: LogConfig) -> DltResource:
    """Reads a JSON-lines change log; a record whose value is null is malformed (a reject row)."""

    @dlt.resource(name="log")
    def changes() -> Iterator[pa.Table]:
        after = config.resume.get("log", 0)  # no local cursor at all: the zones are the only record
        records = [json.loads(line) for line in Path(config.path).read_text().splitlines()]
        new = [r for r in records if r["pos"] > after]
        if new:
            bad = [r["value"] is None for r in new]
            yield pa.table(
                {
                    "value": pa.array([r["value"] for r in new], pa.string()),
                    SOURCE: pa.array(["log"] * len(new), pa.string()),
                    POSITION: pa.array([r["pos"] for r in new], pa.int64()),
                    REJECT_RULE: pa.array(["null_value" if b else None for b in bad], pa.string()),
                    REJECT_REASON: pa.array(["log: value is null" if b else None for b in bad], pa.string()),
                    RAW_TEXT: pa.array(
                        [json.dumps(r) if b else None for r, b in zip(new, bad, strict=True)], pa.string()
                    ),
                }
            )

    return changes


@pytest.fixture
def log_connector(monkeypatch: pytest.MonkeyPatch) -> Connector[LogConfig]:
    monkeypatch.setattr(REGISTRY, "_loaded", dict(REGISTRY._loaded))
    monkeypatch.setattr(REGISTRY, "_in_process", set(REGISTRY._in_process))
    return register_connector(
        Connector(
            name="test_log",
            kind=Kind.REPLICATION,
            config_model=LogConfig,
            factory=_log_resource,
            positions=lambda config: ["log"],
        )
    )


def _append(path: Path, first: int, last: int, null_at: int | None = None) -> None:
    with path.open("a") as handle:
        for pos in range(first, last + 1):
            handle.write(json.dumps({"pos": pos, "value": None if pos == null_at else f"v{pos}"}) + "\n")


def test_a_fresh_machine_resumes_from_the_zone(
    log_connector: Connector[LogConfig], lakegate_home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "changes.jsonl"
    _append(log, 1, 5, null_at=5)  # the last record of the first run is a reject: consumed all the same
    spec = PipelineSpec.model_validate(
        {
            "name": "changes",
            "domain": "ops",
            "pattern": "EL",
            "connector": {"type": "test_log", "config": {"path": str(log)}},
        }
    )
    first = ingest(spec, run_id="r1")
    assert (first.input_rows, first.committed_rows, first.quarantined_rows) == (5, 4, 1)
    config = load_config()
    zones = [open_zone(ZoneName.RAW, config), open_zone(ZoneName.QUARANTINE, config)]
    assert committed_positions(zones, spec.dataset(), ["log"]) == {"log": 5}

    shutil.rmtree(lakegate_home / "dlt")  # another machine: no local working folder
    _append(log, 6, 8)
    second = ingest(spec, run_id="r2")
    assert second.input_rows == 3, "only the changes after the zone's position were read"
    raw = open_zone(ZoneName.RAW, config).read("ops", "changes")
    assert sorted(raw[POSITION].to_list()) == [1, 2, 3, 4, 6, 7, 8]
    assert committed_positions(zones, spec.dataset(), ["log"]) == {"log": 8}
    assert ingest(spec, run_id="r3").input_rows == 0


def test_an_ordered_connector_must_take_resume() -> None:
    with pytest.raises(ConnectorError, match="'resume: dict\\[str, int\\]'"):
        Connector(
            name="no_resume",
            kind=Kind.STREAMING,
            config_model=ConnectorConfig,
            factory=lambda config: dlt.resource([], name="x"),
            positions=lambda config: ["x"],
        )
