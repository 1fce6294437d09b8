"""The Dagster UI end to end: ``dagster dev`` on the demo data, driven through GraphQL and headless Chromium.

One ``dagster dev`` serves the whole module (module-scoped fixture). Screenshots are written to
``test-artifacts/`` (git-ignored) for people to look at; the tests assert on the GraphQL answers, the
rendered DOM and that the PNGs are not blank.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from dagster_project.definitions import DEFS_FOLDER
from tests.conftest import checkout_lock

if TYPE_CHECKING:
    from ui_support import DagsterDev


def _load_ui_support() -> ModuleType:
    """Import ``tests/ui_support.py`` by path.

    The suite runs with ``--import-mode=importlib`` (no test folder on sys.path), and putting ``tests/`` on
    sys.path would shadow the ``zones`` package with the ``tests/zones/`` folder.
    """
    if "ui_support" not in sys.modules:
        spec = importlib.util.spec_from_file_location("ui_support", Path(__file__).with_name("ui_support.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # before exec: dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["ui_support"]


ui = _load_ui_support()

pytestmark = [pytest.mark.ui, pytest.mark.checkout_writes]

ARTIFACTS = ui.REPO_ROOT / "test-artifacts"
DEMO_ROWS = 1_000  # `lakegate demo --rows`: distinct order ids, hence rows in sales/orders/curated
RUN_TIMEOUT_S = 120

# What the IngestionPipeline component builds from dagster_project/defs/*/defs.yaml:
# orders (sales, ELT): landing -> raw -> curated, quarantine; customers (crm, ETL, PII): landing -> curated,
# pii, quarantine; events (web, EL): landing -> raw, quarantine; inventory (warehouse, ELT, SQLite): landing
# -> raw -> curated, quarantine; clickstream (web, ETL from Kafka, PII): landing -> curated, pii, quarantine.
# Landing assets are external (no checks).
EXPECTED_CHECKS: dict[str, set[str]] = {
    "sales/orders/landing": set(),
    "sales/orders/raw": {"quality", "rows_accounted", "pii_undeclared"},
    "sales/orders/curated": {"quality", "table_quality"},  # table_quality: scope: table, on its schedule
    "sales/orders/quarantine": {"records_explained"},
    "crm/customers/landing": set(),
    "crm/customers/curated": {"quality", "rows_accounted", "pii_undeclared"},
    "crm/customers/pii": {"vault_consistent"},
    "crm/customers/quarantine": {"records_explained"},
    "web/events/landing": set(),
    "web/events/raw": {"quality", "rows_accounted", "pii_undeclared"},
    "web/events/quarantine": {"records_explained"},
    "warehouse/inventory/landing": set(),
    "warehouse/inventory/raw": {"quality", "rows_accounted", "pii_undeclared"},
    "warehouse/inventory/curated": {"quality"},
    "warehouse/inventory/quarantine": {"records_explained"},
    "web/clickstream/landing": set(),
    "web/clickstream/curated": {"quality", "rows_accounted", "consumer_lag", "pii_undeclared"},
    "web/clickstream/pii": {"vault_consistent"},
    "web/clickstream/quarantine": {"records_explained"},
    # A broken defs.yaml sits beside the healthy pipelines: visible, with its failing check, never fatal.
    "broken_definitions/zz_broken_products": {"definition_valid"},
}
EXPECTED_JOBS = {
    "sales_orders_job",
    "crm_customers_job",
    "web_events_job",
    "warehouse_inventory_job",
    "web_clickstream_job",
    "lakegate_maintenance_job",
    "sales_orders_table_quality_job",
}
EXPECTED_SCHEDULES = {
    "sales_orders_schedule": "*/15 * * * *",
    "sales_orders_table_quality_schedule": "0 3 * * *",
    "web_events_schedule": "0 * * * *",
    "warehouse_inventory_schedule": "*/30 * * * *",
}
EXPECTED_SENSORS = {"crm_customers_landing_sensor", "web_clickstream_stream_sensor"} | {
    f"retention_{zone}_sensor" for zone in ("landing", "raw", "curated", "pii", "quarantine")
}
GROUPS = ("crm_customers", "sales_orders", "warehouse_inventory", "web_events")

ASSETS_QUERY = """{ assetNodes { assetKey { path } groupName isMaterializable description jobNames
  assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }"""
REPOSITORIES_QUERY = """{ repositoriesOrError { __typename ... on PythonError { message }
  ... on RepositoryConnection { nodes { name location { name } jobs { name }
    schedules { name cronSchedule } sensors { name } } } } }"""
LAUNCH_MUTATION = """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS_QUERY = """query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
RUN_ERRORS_QUERY = """query Run($id: ID!) { runOrError(runId: $id) { ... on Run {
  eventConnection(limit: 1000) { events { __typename ... on MessageEvent { message level stepKey }
    ... on ErrorEvent { error { message } } } } } } }"""
ASSET_STATE_QUERY = """query Asset($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
  __typename ... on AssetNode {
    assetMaterializations(limit: 1) { runId metadataEntries { label ... on IntMetadataEntry { intValue } } }
    assetChecksOrError { ... on AssetChecks { checks { name
      executionForLatestMaterialization { runId status evaluation { success } } } } } } } }"""
UI_ERRORS = ("Something went wrong", "PythonError", "Unexpected GraphQL error", "An error occurred")


@pytest.fixture(scope="module")
def dagster(module_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """``dagster dev`` over an isolated LAKEGATE_HOME holding the demo drops (conftest's ``module_home``)."""
    from dagster_project.instance import prepare

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNTIME__LOG_LEVEL", "ERROR")  # prepare() would set it in os.environ for good
        prepare()  # DAGSTER_HOME/dagster.yaml: telemetry off, lakegate logs, pools
        env = dict(os.environ)
    with checkout_lock(exclusive=True):  # the broken pipeline sits in the checkout all module long
        broken = DEFS_FOLDER / "zz_broken_products"
        broken.mkdir()
        try:
            orders = (DEFS_FOLDER / "orders" / "defs.yaml").read_text()
            (broken / "defs.yaml").write_text(
                orders.replace("name: orders", "name: products").replace("files", "fils")
            )
            yield from _dagster_dev(env, tmp_path_factory)
        finally:
            shutil.rmtree(broken)


def _dagster_dev(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    demo = subprocess.run(
        [str(ui.VENV_BIN / "lakegate"), "demo", "--rows", str(DEMO_ROWS)],
        cwd=ui.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, f"lakegate demo failed:\n{demo.stderr[-3000:]}"
    log_path = tmp_path_factory.mktemp("dagster-dev") / "dagster-dev.log"
    started = time.monotonic()
    try:
        dev = ui.start_dagster_dev(env, log_path)
    except ui.DagsterDevError as exc:  # never a skip, in CI or not: the UI is part of the product
        pytest.fail(f"dagster dev did not start: {exc}", pytrace=False)
    print(f"dagster dev ready at {dev.url} in {time.monotonic() - started:.1f}s (log: {log_path})")
    try:
        yield dev
    finally:
        dev.stop()


def _key(path: list[str]) -> str:
    return "/".join(path)


def _repository(dev: DagsterDev, job: str) -> dict[str, Any]:
    """The repository (name, location, jobs, schedules, sensors) that defines ``job``."""
    answer = dev.graphql(REPOSITORIES_QUERY)["repositoriesOrError"]
    assert answer["__typename"] == "RepositoryConnection", answer
    repos = [r for r in answer["nodes"] if job in {j["name"] for j in r["jobs"]}]
    assert len(repos) == 1, f"{job} in {len(repos)} repositories"
    return repos[0]


def test_assets_checks_jobs_schedules_and_sensors(dagster: DagsterDev) -> None:
    nodes = {_key(n["assetKey"]["path"]): n for n in dagster.graphql(ASSETS_QUERY)["assetNodes"]}
    assert set(nodes) == set(EXPECTED_CHECKS)
    checks = {
        key: {c["name"] for c in node["assetChecksOrError"].get("checks", [])} for key, node in nodes.items()
    }
    assert checks == EXPECTED_CHECKS
    broken = nodes.pop("broken_definitions/zz_broken_products")
    assert "BROKEN pipeline definition" in broken["description"]
    assert "unknown connector 'fils' (did you mean 'files'?)" in broken["description"]
    for key, node in nodes.items():
        domain, name, zone = key.split("/")
        assert node["groupName"] == f"{domain}_{name}", key
        assert node["description"], f"{key} has no description"
        assert node["isMaterializable"] == (zone != "landing"), key
        if node["isMaterializable"]:
            assert checks[key], f"materializable {key} has no asset check"
            assert len(node["jobNames"]) > 1, f"{key} is in no pipeline job"  # besides __ASSET_JOB

    repo = _repository(dagster, "sales_orders_job")
    assert {j["name"] for j in repo["jobs"]} - {"__ASSET_JOB"} == EXPECTED_JOBS
    assert {s["name"]: s["cronSchedule"] for s in repo["schedules"]} == EXPECTED_SCHEDULES
    assert {s["name"] for s in repo["sensors"]} == EXPECTED_SENSORS


def _wait_for_run(dev: DagsterDev, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = "?"
    while time.monotonic() < deadline:
        status = dev.graphql(RUN_STATUS_QUERY, {"id": run_id})["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            return status
        time.sleep(1)
    pytest.fail(f"run {run_id} still {status} after {RUN_TIMEOUT_S}s")


def _run_errors(dev: DagsterDev, run_id: str) -> str:
    events = dev.graphql(RUN_ERRORS_QUERY, {"id": run_id})["runOrError"]["eventConnection"]["events"]
    lines = [
        f"{e['__typename']} {e.get('stepKey') or ''}: {e.get('message')} {e.get('error')}"
        for e in events
        if e.get("level") == "ERROR" or e.get("error")
    ]
    return "\n".join(lines) or "(no error events)"


def test_launch_sales_orders_job_and_checks_pass(dagster: DagsterDev) -> None:
    repo = _repository(dagster, "sales_orders_job")
    selector = {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"]}
    params = {"selector": {**selector, "jobName": "sales_orders_job"}}
    launch = dagster.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
    assert launch["__typename"] == "LaunchRunSuccess", launch
    run_id = launch["run"]["runId"]

    status = _wait_for_run(dagster, run_id)
    assert status == "SUCCESS", f"run {run_id} ended {status}:\n{_run_errors(dagster, run_id)}"

    for key in ("sales/orders/raw", "sales/orders/quarantine", "sales/orders/curated"):
        node = dagster.graphql(ASSET_STATE_QUERY, {"path": key.split("/")})["assetNodeOrError"]
        assert node["__typename"] == "AssetNode", node
        (materialization,) = node["assetMaterializations"]
        assert materialization["runId"] == run_id, key
        checks = node["assetChecksOrError"]["checks"]
        assert {c["name"] for c in checks} == EXPECTED_CHECKS[key]
        for check in checks:
            execution = check["executionForLatestMaterialization"]
            if check["name"] == "table_quality":  # whole-table expectations run on their schedule only
                assert not execution or execution["runId"] != run_id, f"{key}: table_quality ran with the run"
                continue
            assert execution, f"{key} check {check['name']} never ran"
            assert execution["runId"] == run_id, f"{key} check {check['name']}"
            assert execution["status"] == "SUCCEEDED", f"{key} check {check['name']}: {execution}"
            assert execution["evaluation"]["success"] is True, f"{key} check {check['name']}"
        if key == "sales/orders/curated":
            metadata = {m["label"]: m.get("intValue") for m in materialization["metadataEntries"]}
            assert metadata["dagster/row_count"] == DEMO_ROWS


def _chromium() -> str:
    chromium = ui.find_chromium()
    if chromium is None:
        reason = "chromium not installed (apt-get install chromium): no UI screenshot"
        if ui.in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return chromium


def _assert_rendered(png: Path, dom: str, *, expect: tuple[str, ...]) -> None:
    """The page rendered (no error text, ``expect`` visible) and the PNG is not blank."""
    text = ui.page_text(dom)
    for needle in expect:
        assert needle in text, f"{needle!r} not on the page {png.name}: {text[:1500]}"
    for error in UI_ERRORS:
        assert error not in text, f"{png.name} shows {error!r}: {text[:1500]}"
    stats = ui.png_stats(png)
    assert stats.size_bytes > 20_000, stats
    assert stats.distinct_bytes > 32, stats
    colors = ui.distinct_colors(png)
    assert colors is None or colors > 16, f"{png.name}: {colors} colors"


def test_lineage_and_catalog_screenshots(dagster: DagsterDev) -> None:
    chromium = _chromium()
    assert dagster.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True  # else a popup hides the graph
    repo = _repository(dagster, "sales_orders_job")

    # Global lineage, every group expanded: the `expanded` query parameter takes group ids, which are
    # `global@global:<group>` while the flagAssetGraphGroupsPerCodeLocation feature flag is off (default).
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    png = ARTIFACTS / "ui-lineage.png"
    dom = ui.screenshot(chromium, f"{dagster.url}/asset-groups?expanded={expanded}", png, size=(1400, 1800))
    _assert_rendered(png, dom, expect=("Global asset lineage", *GROUPS, "orders", "customers", "events"))

    # One group up close: landing -> raw -> curated and quarantine of sales/orders, readable.
    png = ARTIFACTS / "ui-lineage-sales.png"
    address = f"{repo['name']}@{repo['location']['name']}"
    dom = ui.screenshot(chromium, f"{dagster.url}/locations/{address}/asset-groups/sales_orders", png)
    _assert_rendered(
        png, dom, expect=("sales_orders", "landing", "raw", "curated", "quarantine", "Asset checks")
    )

    png = ARTIFACTS / "ui-catalog.png"
    dom = ui.screenshot(chromium, f"{dagster.url}/assets", png)
    _assert_rendered(png, dom, expect=("Assets", "sales / orders / raw", "crm / customers / pii"))


def test_a_failed_check_names_its_expectation(dagster: DagsterDev, module_home: Path) -> None:
    """A drop breaking a declared expectation fails the raw quality check; the UI names the expectation."""
    chromium = _chromium()
    landing = module_home / "zones" / "landing" / "sales" / "orders"
    (landing / "orders_negative.csv").write_text(
        "order_id,customer_id,amount,status,ordered_at,updated_at\n"
        "900001,5,-12.50,new,2026-11-03T00:00:00Z,2026-11-03T00:00:00Z\n"
    )
    repo = _repository(dagster, "sales_orders_job")
    selector = {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"]}
    launch = dagster.graphql(
        LAUNCH_MUTATION, {"params": {"selector": {**selector, "jobName": "sales_orders_job"}}}
    )
    run_id = launch["launchRun"]["run"]["runId"]
    assert _wait_for_run(dagster, run_id) == "FAILURE"  # the blocking check stops curated

    png = ARTIFACTS / "ui-failed-check.png"
    dom = ui.screenshot(
        chromium, f"{dagster.url}/assets/sales/orders/raw?view=checks&checkDetail=quality", png
    )
    _assert_rendered(
        png, dom, expect=("quality", "expect_column_values_to_be_between(amount): 1 of 1 unexpected")
    )
    assert "-12.50" not in ui.page_text(dom)
