"""Table upkeep on a real pipeline: 500 micro-batch appends compacted, replays still no-ops, the next
curate applies exactly the new raw rows; policies refused at load with one line naming file and field."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, Transaction

import pipelines
from dagster_project.cli import main
from lakegate.columns import LOAD_ID
from pipelines.demo import write_demo
from pipelines.errors import PipelineSpecError
from pipelines.retention import Declared, apply, load_declared, plan, policies
from zones import ZoneName, load_config, open_zone
from zones._delta import append, is_replay

DEFS = Path(__file__).resolve().parents[1] / "dagster_project" / "defs"


def _orders() -> list[Declared]:
    return [d for d in load_declared(DEFS) if d.spec.name == "orders"]


def test_compaction_of_500_micro_batches_keeps_replays_and_curate_exact(lakegate_home: Path) -> None:
    config = load_config()
    write_demo(config, rows=20)
    assert main(["run", "orders"]) == 0
    spec = _orders()[0].spec
    raw = open_zone(ZoneName.RAW, config)
    uri, options = raw.table_uri("sales", "orders"), raw.delta_options()
    template = pl.read_delta(uri).head(1)

    def batch(i: int) -> pl.DataFrame:
        return template.with_columns(
            pl.lit(1_000_000 + i).alias("order_id"), pl.lit(f"micro-{i}").alias(LOAD_ID)
        )

    stamp = int(time.time() * 1000)
    for i in range(500):
        append(uri, batch(i).to_arrow(), options, [Transaction(f"lakegate:micro:{i}", 1, last_updated=stamp)])
    assert pipelines.curate(spec, run_id="catch-up", config=config).report.committed_rows == 500
    before = pl.read_delta(uri)
    files_before = len(DeltaTable(uri).file_uris())

    planned = plan(_orders(), config, datetime.now(UTC), zones=[ZoneName.RAW])
    [raw_plan] = planned.datasets
    assert raw_plan.policy.upkeep_waits is None and raw_plan.compact_files >= 500
    [done] = apply(_orders(), config, planned, run_id="upkeep")
    assert done.compacted_files == raw_plan.compact_files and done.checkpoint_version is not None

    after = pl.read_delta(uri)
    assert len(DeltaTable(uri).file_uris()) <= files_before // 100
    assert after.sort("order_id", LOAD_ID).equals(before.sort("order_id", LOAD_ID).select(after.columns))
    # A batch committed before compaction is still recognised: replaying it is a no-op.
    assert is_replay(uri, options, Transaction("lakegate:micro:7", 1))
    assert pipelines.curate(spec, run_id="after-upkeep", config=config).raw_version is None

    curated = open_zone(ZoneName.CURATED, config)
    rows_before = curated.read("sales", "orders").height
    for i in range(500, 503):
        append(uri, batch(i).to_arrow(), options, [Transaction(f"lakegate:micro:{i}", 1, last_updated=stamp)])
    result = pipelines.curate(spec, run_id="next", config=config)
    assert result.report.committed_rows == 3
    assert curated.read("sales", "orders").height == rows_before + 3


def test_raw_upkeep_waits_while_curate_has_not_applied_every_append(lakegate_home: Path) -> None:
    config = load_config()
    write_demo(config, rows=10)
    assert main(["run", "orders"]) == 0
    raw = open_zone(ZoneName.RAW, config)
    uri = raw.table_uri("sales", "orders")
    append(uri, pl.read_delta(uri).head(1).to_arrow(), raw.delta_options(), [Transaction("lakegate:x", 1)])
    [raw_policy] = [p for p in policies(_orders(), config) if p.zone is ZoneName.RAW]
    assert raw_policy.upkeep_waits is not None and "curate has not applied" in raw_policy.upkeep_waits


def _config_with(home: Path, text: str) -> Path:
    file = home.parent / "lakegate.yaml"
    file.write_text(text)
    return file


def test_hold_on_unknown_dataset_is_refused_at_load(lakegate_home: Path) -> None:
    file = _config_with(
        lakegate_home, "holds:\n  - {dataset: sales/ordrs, reason: r, who: w, when: 2024-01-01}\n"
    )
    with pytest.raises(PipelineSpecError) as err:
        policies(load_declared(DEFS), load_config(file))
    assert str(err.value).startswith(
        f"{file}: holds.0.dataset: 'sales/ordrs' is not a dataset of any pipeline"
    )


def test_pipeline_retention_shorter_than_the_window_is_refused_at_load(
    lakegate_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "defs"
    (folder / "orders").mkdir(parents=True)
    text = (DEFS / "orders" / "defs.yaml").read_text() + "  retention: {raw: 3d, curated: 400d}\n"
    (folder / "orders" / "defs.yaml").write_text(text)
    with pytest.raises(PipelineSpecError) as err:
        policies(load_declared(folder), load_config())
    message = str(err.value)
    assert message.startswith(f"{folder / 'orders' / 'defs.yaml'}: attributes.retention.raw: retention 3d")
    assert "time_travel 7d" in message and "\n" not in message


def test_unparsable_pipeline_retention_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "orders").mkdir()
    text = (DEFS / "orders" / "defs.yaml").read_text() + "  retention: {raw: thirty days}\n"
    (tmp_path / "orders" / "defs.yaml").write_text(text)
    problems = pipelines.check_defs_file(tmp_path / "orders" / "defs.yaml")
    assert problems == [
        f"{tmp_path / 'orders' / 'defs.yaml'}: attributes.retention.raw: "
        "Value error, 'thirty days' is not a duration; write e.g. 36h, 30d, 2w or 1y"
    ]
