"""Snapshot of every asset key, check, job, schedule and sensor, and the shipped project's validators.

Regenerate after an intended change: ``LAKEGATE_UPDATE_SNAPSHOTS=1 pytest tests/test_definitions.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from dagster_project.cli import main
from dagster_project.definitions import defs

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _asset(graph: Any, key: dg.AssetKey) -> dict[str, Any]:
    node = graph.get(key)
    return {
        "group": node.group_name,
        "deps": sorted(d.to_user_string() for d in node.parent_keys),
        "kinds": sorted(node.kinds),
        "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind/")},
        "owners": sorted(node.owners),
        "metadata_keys": sorted(node.metadata),
        "pii_columns": sorted(
            c.name
            for c in getattr(node.metadata.get("dagster/column_schema"), "columns", [])
            if c.tags.get("pii")
        ),
    }


def inventory(built: dg.Definitions | None = None) -> dict[str, Any]:
    built = built or defs()
    graph = built.resolve_asset_graph()
    return {
        "assets": {k.to_user_string(): _asset(graph, k) for k in sorted(built.resolve_all_asset_keys())},
        "checks": sorted(
            f"{key.asset_key.to_user_string()}:{key.name}:"
            f"{'blocking' if graph.get_check_spec(key).blocking else 'warn'}"
            for key in graph.asset_check_keys
        ),
        "jobs": sorted(
            f"{j.name}:{j.tags.get('lakegate/pipeline')}"
            for j in built.resolve_all_job_defs()
            if not j.name.startswith("__")
        ),
        "schedules": sorted(f"{s.name}:{s.cron_schedule}" for s in built.schedules or []),
        "sensors": sorted(s.name for s in built.sensors or []),
    }


def test_definitions_match_snapshot() -> None:
    current = inventory()
    if os.environ.get("LAKEGATE_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_materializable_asset_has_a_check() -> None:
    built = defs()
    graph = built.resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    materializable = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert materializable and materializable <= checked


def test_lakegate_check_passes_on_the_shipped_project(capsys: Any) -> None:
    assert main(["check"]) == 0
    assert "5 pipeline(s) valid" in capsys.readouterr().out


def test_dg_check_defs_passes_on_the_shipped_project() -> None:
    dg_cli = shutil.which("dg", path=str(Path(sys.executable).parent))
    assert dg_cli, "the dg command (dagster-dg-cli) is part of the project's dependencies"
    done = subprocess.run([dg_cli, "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_definitions_load_without_io(tmp_path: Path, monkeypatch: Any) -> None:
    home = tmp_path / "never-created"
    monkeypatch.setenv("LAKEGATE_HOME", str(home))
    assert isinstance(defs(), dg.Definitions)
    assert not home.exists()


def test_whole_table_expectations_run_in_their_own_scheduled_job_only() -> None:
    built = defs()

    def checks_of(job: str) -> set[str]:
        graph = built.resolve_job_def(job).asset_layer.asset_graph
        return {f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys}

    assert "sales/orders/curated:table_quality" not in checks_of("sales_orders_job")
    assert checks_of("sales_orders_table_quality_job") == {"sales/orders/curated:table_quality"}
    schedule = built.resolve_schedule_def("sales_orders_table_quality_schedule")
    assert schedule.job_name == "sales_orders_table_quality_job"
