"""Checks cost the batch, not the table: a curate run validates the rows it merged, takes the table's row
count from the Delta log, and leaves ``scope: table`` expectations to the scheduled ``table_quality``."""

from __future__ import annotations

from pathlib import Path

import fsspec

from pipelines import CheckInput, PipelineSpec, Step, checks_for, curate, ingest, table_check
from tests.test_curate_batches import DROPS
from zones import ZoneName, load_config, open_zone

TABLE_WIDE = {
    "type": "expect_column_max_to_be_between",
    "kwargs": {"column": "amount", "max_value": 45},
    "scope": "table",
}


def spec(*expectations: dict[str, object]) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "shop",
            "connector": {"type": "files", "config": {"url": "lakegate://landing/shop/orders/*.csv"}},
            "pattern": "ELT",
            "primary_key": ["id"],
            "columns": {
                "id": {"type": "int64"},
                "amount": {"type": "int64"},
                "updated_at": {"type": "datetime"},
            },
            "transforms": ["dedupe_latest"],
            "quality": {"expectations": list(expectations)},
        }
    )


def run(pipeline: PipelineSpec, drops: list[int], run_id: str) -> CheckInput:
    landing = open_zone("landing", load_config())
    for i in drops:
        with fsspec.open(f"{landing.config.url}/shop/orders/d{i}.csv", "w", auto_mkdir=True) as out:
            out.write(DROPS[i])
        ingest(pipeline, run_id=f"ingest-{i}")
    result = curate(pipeline, run_id=run_id)
    return CheckInput(
        spec=pipeline, config=load_config(), run_id=run_id, report=result.report, step=Step.CURATE
    )


def test_curated_quality_validates_the_rows_of_its_run_and_counts_the_table_from_the_log(
    lakegate_home: Path,
) -> None:
    pipeline = spec()
    run(pipeline, [0, 1], "first")
    given = run(pipeline, [2], "second")  # merges 2 (update), 3 (update) and 5 (new)
    [quality] = [c for c in checks_for(pipeline, Step.CURATE) if c.name == "quality"]
    outcome = quality.evaluate(given)
    curated = open_zone(ZoneName.CURATED, load_config()).read("shop", "orders")
    assert outcome.passed
    assert outcome.metadata["rows"] == given.report.committed_rows == 3
    assert outcome.metadata["table_rows"] == curated.height == 5
    # Counts and expectation names only: no cell value reaches the metadata.
    assert all(isinstance(v, int | list) for v in outcome.metadata.values())


def test_table_scope_expectations_run_only_in_the_scheduled_table_check(lakegate_home: Path) -> None:
    pipeline = spec(TABLE_WIDE)
    assert table_check(spec()) is None  # nothing declared scope: table, no scheduled check
    check = table_check(pipeline)
    assert check is not None and check.name not in {c.name for c in checks_for(pipeline, Step.CURATE)}
    given = run(pipeline, [0, 1, 2, 3], "all")  # amounts up to 60: the table-wide max fails
    [quality] = [c for c in checks_for(pipeline, Step.CURATE) if c.name == "quality"]
    assert quality.evaluate(given).passed  # the run's check leaves scope: table expectations out
    outcome = check.evaluate(given)
    assert not outcome.passed
    assert outcome.failures == ("expect_column_max_to_be_between(amount): failed",)
    assert outcome.metadata["rows"] == 6


def test_a_runs_checks_read_only_the_files_its_commits_added(lakegate_home: Path) -> None:
    """A run's rows are found through Delta's file statistics (its packages' ``ingested_at``): its checks
    pass with every earlier run's raw and quarantine files gone from the store, so they never read them."""
    pipeline = spec()
    config = load_config()
    landing = open_zone("landing", config)
    drops = [*DROPS[:2], "id,amount,updated_at\n7,70,2026-01-07T00:00:00Z\n8,oops,2026-01-07T00:00:00Z\n"]
    for i, text in enumerate(drops):
        with fsspec.open(f"{landing.config.url}/shop/orders/d{i}.csv", "w", auto_mkdir=True) as out:
            out.write(text)
        if i == len(drops) - 1:
            earlier = [
                Path(uri)
                for zone in (ZoneName.RAW, ZoneName.QUARANTINE)
                for uri in open_zone(zone, config).delta_table("shop", "orders").file_uris()  # type: ignore[union-attr]
            ]
        report = ingest(pipeline, run_id=f"ingest-{i}")
    assert len(earlier) >= 3  # raw of two runs, quarantine of one
    for path in earlier:
        path.unlink()
    given = CheckInput(spec=pipeline, config=config, run_id="ingest-2", report=report, step=Step.INGEST)
    outcomes = {check.name: check.evaluate(given) for check in checks_for(pipeline, Step.INGEST)}
    assert outcomes["quality"].passed and outcomes["quality"].metadata["rows"] == report.committed_rows == 1
    assert outcomes["records_explained"].passed
    assert outcomes["records_explained"].metadata["records"] == report.quarantined_rows == 1
