"""Curate reads pending raw files in batches: a small batch size over many raw files gives the table one
batch gives, later batches win, an older change in a later batch never wins, and the raw version applied
is recorded once the whole backlog is merged (in one commit)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import polars as pl

from lakegate import columns as col
from pipelines import PipelineSpec, curate, ingest
from pipelines import _flow as flow
from zones import ZoneName, load_config, open_zone

DROPS = [
    "id,amount,updated_at\n1,10,2026-01-01T00:00:00Z\n2,20,2026-01-01T00:00:00Z\n3,30,2026-01-01T00:00:00Z\n",
    "id,amount,updated_at\n2,21,2026-01-02T00:00:00Z\n4,40,2026-01-01T00:00:00Z\n1,bad,2026-01-03T00:00:00Z\n",
    # id 3 arrives later but is older than the stored row: it must not win with order_by.
    "id,amount,updated_at\n3,31,2025-12-01T00:00:00Z\n5,50,2026-01-01T00:00:00Z\n2,22,2026-01-03T00:00:00Z\n",
    "id,amount,updated_at\n5,51,2026-01-05T00:00:00Z\n5,52,2026-01-04T00:00:00Z\n6,60,2026-01-01T00:00:00Z\n",
]


def spec(name: str, order_by: list[str]) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": name,
            "domain": "shop",
            "connector": {"type": "files", "config": {"url": f"lakegate://landing/shop/{name}/*.csv"}},
            "pattern": "ELT",
            "primary_key": ["id"],
            "order_by": order_by,
            "columns": {
                "id": {"type": "int64"},
                "amount": {"type": "int64"},
                "updated_at": {"type": "datetime"},
            },
            "transforms": ["dedupe_latest"],
        }
    )


def ingest_drops(pipeline: PipelineSpec) -> None:
    """Each drop is its own ingest run: raw then holds one commit (and file) per drop."""
    landing = open_zone("landing", load_config())
    for i, text in enumerate(DROPS):
        with fsspec.open(f"{landing.config.url}/shop/{pipeline.name}/d{i}.csv", "w", auto_mkdir=True) as out:
            out.write(text)
        ingest(pipeline, run_id=f"ingest-{i}")


def tables(name: str) -> tuple[pl.DataFrame, list[str]]:
    config = load_config()
    rows = open_zone(ZoneName.CURATED, config).read("shop", name).select("id", "amount").sort("id")
    rules = sorted(open_zone(ZoneName.QUARANTINE, config).read("shop", name)[col.RULE].to_list())
    return rows, rules


def test_small_batches_over_many_raw_files_give_the_table_of_one_batch(lakegate_home: Path) -> None:
    small, whole = spec("small", []), spec("whole", [])
    for pipeline in (small, whole):
        ingest_drops(pipeline)
    pending = flow.pending_raw(small, load_config(), batch_rows=2)
    assert pending is not None and len(pending.files) == len(DROPS)
    heights = [frame.height for frame in pending.batches()]
    assert sum(heights) == 11 and len(heights) == 5  # 11 good raw rows (the bad amount stayed out of raw)
    curated_small = curate(small, run_id="curate-small", batch_rows=2)
    curate(whole, run_id="curate-whole")
    assert tables("small")[0].rows() == tables("whole")[0].rows()
    # Without order_by the last arrival wins: 2 -> 22 (drop 3), 3 -> 31, 5 -> 52 (last row of drop 4).
    assert tables("small")[0].rows() == [(1, 10), (2, 22), (3, 31), (4, 40), (5, 52), (6, 60)]
    assert len(tables("small")[1]) == len(tables("whole")[1])
    curated_table = open_zone(ZoneName.CURATED, load_config()).delta_table("shop", "small")
    assert curated_table is not None and curated_table.version() == 0  # one commit for the whole backlog
    report = curated_small.report
    assert report.input_rows == report.committed_rows + report.quarantined_rows
    assert flow.pending_raw(small, load_config()) is None  # the raw version applied was recorded
    assert curate(small, run_id="again", batch_rows=2).raw_version is None


def test_an_older_change_in_a_later_batch_never_wins(lakegate_home: Path) -> None:
    ordered = spec("ordered", ["updated_at"])
    ingest_drops(ordered)
    curate(ordered, run_id="curate-1", batch_rows=2)
    # 3 keeps 30 (the later 31 is older); 5 keeps 51 (newest, though 52 arrived after it).
    assert tables("ordered")[0].rows() == [(1, 10), (2, 22), (3, 30), (4, 40), (5, 51), (6, 60)]


def test_a_backlog_curated_in_two_runs_equals_one_run(lakegate_home: Path) -> None:
    twice, once = spec("twice", ["updated_at"]), spec("once", ["updated_at"])
    ingest_drops(once)
    curate(once, run_id="once", batch_rows=2)
    landing = open_zone("landing", load_config())
    for i, text in enumerate(DROPS):
        with fsspec.open(f"{landing.config.url}/shop/twice/d{i}.csv", "w", auto_mkdir=True) as out:
            out.write(text)
        ingest(twice, run_id=f"ingest-{i}")
        if i == 1:
            curate(twice, run_id="first-half", batch_rows=2)
    curate(twice, run_id="second-half", batch_rows=2)
    assert tables("twice")[0].rows() == tables("once")[0].rows()
