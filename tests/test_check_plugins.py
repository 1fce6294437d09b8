"""Checks share the one registry design: a distribution publishes a CheckDef under ``lakegate.checks``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_project.definitions import defs
from pipelines import CHECK_REGISTRY, PipelineSpec, Step, checks_for, load_spec
from pipelines.checks import CheckRegistrationError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = """
from pipelines import CheckDef, CheckOutcome, Step, Target

CHECK = CheckDef(
    "has_rows_in",
    Step.INGEST,
    Target.DATA,
    "the run brought at least one input row",
    lambda given: CheckOutcome(passed=given.report.input_rows > 0),
    blocking=lambda spec: False,
)
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    info = tmp_path / "lakegate_check_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lakegate_check_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[lakegate.checks]\ningest.has_rows_in = lakegate_check_plugin:CHECK\n"
    )
    (tmp_path / "lakegate_check_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(CHECK_REGISTRY, "_loaded", dict(CHECK_REGISTRY._loaded))
    yield
    sys.modules.pop("lakegate_check_plugin", None)


def _orders() -> PipelineSpec:
    return load_spec(ROOT / "dagster_project" / "defs" / "orders" / "defs.yaml")


def test_a_published_check_runs_with_the_built_ins(plugin: None) -> None:
    names = [c.key for c in checks_for(_orders(), Step.INGEST)]
    assert names[:3] == ["ingest.quality", "ingest.rows_accounted", "ingest.records_explained"]
    assert names[-1] == "ingest.has_rows_in"
    graph = defs().resolve_asset_graph()
    assert {k.name for k in graph.asset_check_keys if k.asset_key.to_user_string() == "sales/orders/raw"} == {
        "quality",
        "rows_accounted",
        "pii_undeclared",
        "has_rows_in",
    }


def test_a_built_in_check_cannot_be_replaced() -> None:
    with pytest.raises(CheckRegistrationError, match=r"'ingest\.quality' is already registered"):
        CHECK_REGISTRY.register("ingest.quality", checks_for(_orders(), Step.INGEST)[0])
