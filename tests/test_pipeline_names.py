"""Names that cannot collide: two pipelines called ``orders`` in two domains load and run side by side."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.cli import DEFS_FOLDER, main
from dagster_project.definitions import defs
from pipelines.demo import write_demo
from tests.conftest import require_checkout_writes
from zones import load_config, open_zone


@pytest.fixture
def finance_orders() -> Iterator[Path]:
    """A second ``orders`` pipeline, in domain ``finance``, beside the shipped one (removed afterwards)."""
    require_checkout_writes()
    folder = DEFS_FOLDER / "zz_finance_orders"
    folder.mkdir()
    text = (DEFS_FOLDER / "orders" / "defs.yaml").read_text()
    assert "domain: sales" in text
    (folder / "defs.yaml").write_text(text.replace("domain: sales", "domain: finance"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.checkout_writes
def test_same_name_in_two_domains_loads_without_collisions(finance_orders: Path) -> None:
    built = defs()
    jobs = {j.name for j in built.resolve_all_job_defs()}
    assert {"sales_orders_job", "finance_orders_job"} <= jobs
    schedules = {s.name for s in built.schedules or []}
    assert {"sales_orders_schedule", "finance_orders_schedule"} <= schedules
    keys = {k.to_user_string() for k in built.resolve_all_asset_keys()}
    assert {"sales/orders/raw", "finance/orders/raw", "finance/orders/curated"} <= keys
    groups = {built.resolve_asset_graph().get(k).group_name for k in built.resolve_all_asset_keys()}
    assert {"sales_orders", "finance_orders"} <= groups


@pytest.mark.checkout_writes
def test_run_names_the_domain_when_a_name_is_ambiguous(
    finance_orders: Path, lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "orders"]) == 2
    assert "pipeline name 'orders' is taken in several domains: finance/orders, sales/orders" in (
        capsys.readouterr().err
    )
    write_demo(load_config(), rows=20)
    assert main(["run", "sales/orders"]) == 0
    curated = open_zone("curated", load_config())
    assert curated.delta_table("sales", "orders") is not None
    assert curated.delta_table("finance", "orders") is None  # only the pipeline asked for ran


@pytest.fixture
def broken_products() -> Iterator[Path]:
    """A ``products`` pipeline whose connector name has a typo, beside the shipped ones."""
    require_checkout_writes()
    folder = DEFS_FOLDER / "products"
    folder.mkdir()
    text = (DEFS_FOLDER / "orders" / "defs.yaml").read_text()
    (folder / "defs.yaml").write_text(
        text.replace("name: orders", "name: products").replace("type: files", "type: fils")
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.checkout_writes
def test_a_broken_defs_yaml_never_breaks_the_other_pipelines(
    broken_products: Path, lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = defs()
    assert "sales_orders_job" in {j.name for j in built.resolve_all_job_defs()}
    graph = built.resolve_asset_graph()
    placeholder = dg.AssetKey(["broken_definitions", "products"])
    assert graph.has(placeholder)  # visible in the UI as broken, with a failing check
    assert any(k.asset_key == placeholder for k in graph.asset_check_keys)

    write_demo(load_config(), rows=20)
    assert main(["run", "orders"]) == 0
    capsys.readouterr()
    assert main(["run", "products"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "pipeline 'products' is not defined correctly" in err[0]
    assert "attributes.connector: unknown connector 'fils' (did you mean 'files'?)" in err[0]
    assert str(broken_products / "defs.yaml") in err[0]
