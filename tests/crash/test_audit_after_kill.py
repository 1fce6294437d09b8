"""A process that dies between a zone commit and its audit record: the next run writes the record."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from zones import (
    DatasetSpec,
    LoadReport,
    LoadTarget,
    ZoneName,
    lakegate_pipeline,
    load_config,
    open_zone,
    read_audit,
)

LOAD = """
import os, sys
import dlt, pyarrow as pa
import zones.destination
from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_pipeline, load_config

if sys.argv[1] == "die-before-audit":
    zones.destination.record = lambda *a, **k: os._exit(9)  # the commit is done, its audit record is not

@dlt.resource(name="items")
def items():
    yield pa.table({"id": [1, 2, 3], "_lakegate_source": ["mem://x"] * 3, "_lakegate_position": [1, 2, 3]})

spec = DatasetSpec(domain="shop", name="items", schema={"id": "int64"}, primary_key=("id",))
target = LoadTarget(dataset=spec, zone=ZoneName.RAW, pipeline="items", run_id="r1", config=load_config())
with lakegate_pipeline("lakegate_shop_items_ingest", target, LoadReport()) as pipeline:
    pipeline.run(dlt.source(name="items")(lambda: items)())
"""


def test_a_commit_whose_audit_record_was_lost_is_audited_by_the_next_run(lakegate_home: Path) -> None:
    died = subprocess.run([sys.executable, "-c", textwrap.dedent(LOAD), "die-before-audit"], timeout=120)
    assert died.returncode == 9
    raw = open_zone(ZoneName.RAW)
    table = raw.delta_table("shop", "items")
    assert table is not None and table.version() == 0  # committed, not audited
    assert read_audit(raw).height == 0

    spec = DatasetSpec(domain="shop", name="items", schema={"id": "int64"}, primary_key=("id",))
    target = LoadTarget(dataset=spec, zone=ZoneName.RAW, pipeline="items", run_id="r2", config=load_config())
    with lakegate_pipeline("lakegate_shop_items_ingest", target, LoadReport()) as pipeline:
        assert not pipeline.has_pending_data  # the pending package was loaded (a replay) on opening

    audit = read_audit(raw)
    assert audit.select("table", "version", "rows", "operation").rows() == [
        (raw.table_uri("shop", "items"), 0, 3, "append")
    ]
    assert raw.read("shop", "items").height == 3  # the replay committed nothing twice
    assert audit["load_id"].to_list() == [raw.read("shop", "items")["_lakegate_load_id"][0]]
