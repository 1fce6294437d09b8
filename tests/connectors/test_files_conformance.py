"""The ``files`` connector through the batch conformance kit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.testing import BatchTests


class TestFilesConformance(BatchTests):
    connector_name = "files"

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "orders_1.csv").write_text("id,amount\n1,10\n2,20\n3,30,oops\n")
        (drop / "orders_2.csv").write_text("id,amount\n4,40\n")
        return {"url": f"{drop.as_uri()}/*.csv"}

    def make_bad_config(self, tmp_path: Path) -> tuple[dict[str, Any], int, int]:
        (tmp_path / "bad.csv").write_text("id,amount\n1,10\n2\n3,30\n4,40,extra\n")
        (tmp_path / "bad.ndjson").write_text('{"id": 5}\n{"id": 6\n')
        return {"url": f"{tmp_path.as_uri()}/bad.*"}, 3, 3
