"""The walls of DESIGN.md, checked on the source: who may import Dagster, and one home for reserved names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAGSTER_FREE = ("lakegate", "connectors", "transforms", "zones", "pipelines")
WALLS = {  # package -> packages of ours it must never import
    "lakegate": {"connectors", "transforms", "zones", "pipelines", "dagster_project"},
    "connectors": {"transforms", "zones", "pipelines", "dagster_project", "great_expectations"},
    "transforms": {"connectors", "zones", "pipelines", "dagster_project", "great_expectations"},
    "zones": {"connectors", "pipelines", "dagster_project", "great_expectations"},
    "pipelines": {"dagster_project"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", DAGSTER_FREE)
def test_only_dagster_project_imports_dagster(package: str) -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in _modules(package) if {"dagster", "dagster_dlt"} & _imports(p)
    ]
    assert not offenders, f"these modules import dagster: {offenders}"


@pytest.mark.parametrize("package", sorted(WALLS))
def test_packages_keep_their_walls(package: str) -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & WALLS[package])
        for p in _modules(package)
        if _imports(p) & WALLS[package]
    }
    assert not offenders, f"{package}/ crosses its walls: {offenders}"


def test_reserved_column_names_are_spelled_in_one_module() -> None:
    home = ROOT / "lakegate" / "columns.py"
    spelled = []
    for package in (*DAGSTER_FREE, "dagster_project"):
        for path in _modules(package):
            if path == home:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value.startswith("_lakegate_")
                    and "\n" not in node.value
                ):
                    spelled.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not spelled, "import the names from lakegate.columns instead: " + "; ".join(spelled)
