"""A failing blocking check stops promotion; the landing sensor asks for a run only when files change."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import fsspec
import pytest

from dagster_project.cli import main
from dagster_project.definitions import defs
from dagster_project.resources import default_resources
from zones import load_config, open_zone

HEADER = "order_id,customer_id,amount,status,ordered_at,updated_at\n"


def drop(name: str, body: str) -> None:
    landing = open_zone("landing", load_config())
    with fsspec.open(f"{landing.config.url}/sales/orders/{name}", "w", auto_mkdir=True) as handle:
        handle.write(HEADER + body)


def test_failing_blocking_check_stops_curated(
    lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A negative amount casts fine but breaks the declared expectation (amount >= 0) on this run's raw rows.
    drop(
        "o.csv",
        "1,7,10.00,new,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z\n2,8,-5.00,new,2026-11-01,2026-11-01\n",
    )
    assert main(["run", "orders"]) == 2
    err = capsys.readouterr().err
    assert "lakegate: error: pipeline 'orders' failed" in err
    # The blocking check is named with the expectation, the column and the counts, never a value.
    assert "sales/orders/raw:quality" in err
    assert "expect_column_values_to_be_between(amount): 1 of 2 unexpected" in err
    assert "-5.00" not in err
    config = load_config()
    assert open_zone("raw", config).read("sales", "orders").height == 2  # landed, kept, visible
    assert open_zone("curated", config).delta_table("sales", "orders") is None  # never promoted


def test_null_key_is_quarantined_at_ingest_and_the_run_goes_on(lakegate_home: Path) -> None:
    drop(
        "o.csv",
        "1,7,10.00,new,2026-11-01T00:00:00Z,2026-11-01T00:00:00Z\n,8,5.00,new,2026-11-01,2026-11-01\n",
    )
    assert main(["run", "orders"]) == 0
    config = load_config()
    assert open_zone("curated", config).read("sales", "orders")["order_id"].to_list() == [1]
    rules = open_zone("quarantine", config).read("sales", "orders")["_lakegate_rule"].to_list()
    assert rules == ["primary_key_null"]


def test_landing_sensor_requests_a_run_per_new_drop(lakegate_home: Path) -> None:
    sensor = defs().get_sensor_def("crm_customers_landing_sensor")
    resources = default_resources()
    with dg.instance_for_test() as instance:
        first = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(first, dg.SkipReason)
        landing = open_zone("landing", load_config())
        with fsspec.open(f"{landing.config.url}/crm/customers/a.ndjson", "w", auto_mkdir=True) as handle:
            handle.write('{"customer_id": 1}\n')
        second = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(second, dg.SensorResult) and len(second.run_requests or []) == 1
        again = sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=resources))
        assert isinstance(again, dg.SkipReason)
