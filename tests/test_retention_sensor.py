"""The retention sensor, with Dagster's sensor test context and an injected clock, requests a maintenance
run exactly when something expired; the run deletes it and reports it as materialization metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.cli import main
from dagster_project.definitions import DEFS_FOLDER
from dagster_project.maintenance import maintenance_job, retention_sensor
from dagster_project.resources import default_resources
from pipelines.demo import write_demo
from pipelines.retention import load_declared
from zones import ZoneName, load_config, open_zone


def test_sensor_requests_a_run_exactly_when_something_expired(lakegate_home: Path, monkeypatch) -> None:
    config_file = lakegate_home.parent / "lakegate.yaml"
    config_file.write_text("zones: {raw: {retention: 30d}}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config_file))
    write_demo(load_config(), rows=10)
    assert main(["run", "orders"]) == 0
    declared = load_declared(DEFS_FOLDER)
    clock = {"now": datetime.now(UTC)}
    sensor = retention_sensor(ZoneName.RAW, declared, clock=lambda: clock["now"])
    resources = default_resources()
    with dg.instance_for_test() as instance:
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, resources=resources)), dg.SkipReason
        )
        clock["now"] += timedelta(days=31)
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
        request = (result.run_requests or [])[0]
        assert "sales/orders@" in (request.run_key or "")

        job = maintenance_job(declared, clock=lambda: clock["now"])
        run = job.execute_in_process(instance=instance, run_config=request.run_config, resources=resources)
        assert run.success
        raw_key = dg.AssetKey(["sales", "orders", "raw"])
        [event] = [
            m for m in run.asset_materializations_for_node("maintain_sales_orders") if m.asset_key == raw_key
        ]
        assert event.metadata["deleted_rows"].value > 0
        assert open_zone(ZoneName.RAW, load_config()).read("sales", "orders").height == 0
        # Seen from day 31 the delete (committed on the wall clock) is older than the 7-day window, so its
        # files are vacuum work: one more run, then nothing is left to ask for.
        again = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(again, dg.SensorResult) and again.run_requests
        vacuum = job.execute_in_process(
            instance=instance, run_config=again.run_requests[0].run_config, resources=resources
        )
        [event] = [
            m
            for m in vacuum.asset_materializations_for_node("maintain_sales_orders")
            if m.asset_key == raw_key
        ]
        assert event.metadata["vacuumed_files"].value > 0 and event.metadata["deleted_rows"].value == 0
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, resources=resources)), dg.SkipReason
        )


def test_landing_sensor_requests_a_run_when_archived_files_expired(lakegate_home: Path, monkeypatch) -> None:
    config_file = lakegate_home.parent / "lakegate.yaml"
    config_file.write_text("zones: {landing: {retention: 30d}}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config_file))
    write_demo(load_config(), rows=10)
    assert main(["run", "orders"]) == 0
    landing = Path(open_zone(ZoneName.LANDING, load_config()).config.url.removeprefix("file://"))
    archived = sorted((landing / "_archive" / "sales" / "orders").rglob("*.csv"))
    assert len(archived) == 2
    declared = load_declared(DEFS_FOLDER)
    clock = {"now": datetime.now(UTC)}
    sensor = retention_sensor(ZoneName.LANDING, declared, clock=lambda: clock["now"])
    resources = default_resources()
    with dg.instance_for_test() as instance:
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, resources=resources)), dg.SkipReason
        )
        clock["now"] += timedelta(days=31)
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
        request = (result.run_requests or [])[0]
        job = maintenance_job(declared, clock=lambda: clock["now"])
        run = job.execute_in_process(instance=instance, run_config=request.run_config, resources=resources)
        assert run.success
        landing_key = dg.AssetKey(["sales", "orders", "landing"])
        [event] = [
            m
            for m in run.asset_materializations_for_node("maintain_sales_orders")
            if m.asset_key == landing_key
        ]
        assert event.metadata["deleted_files"].value == 2
        assert not any(p.exists() for p in archived)
        assert isinstance(
            sensor(dg.build_sensor_context(instance=instance, resources=resources)), dg.SkipReason
        )
