"""docs/tutorial.md, followed word for word: scaffold -> a real SQLite source -> defs.yaml -> run -> table.

Every ``file=PATH`` code block of the tutorial is written to PATH (inside the project for the connector
and the pipeline, removed afterwards), and the commands the tutorial shows are run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import REGISTRY
from dagster_project.cli import main
from dagster_project.definitions import DEFS_FOLDER, defs
from tests.conftest import require_checkout_writes
from zones import load_config, open_zone

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"^```\w+ file=(?P<path>\S+)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> dict[str, str]:
    return {m["path"]: m["body"] for m in BLOCK.finditer(TUTORIAL.read_text())}


@pytest.fixture
def tutorial_project(lakegate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The tutorial's files in place; the connector package and the pipeline folder removed afterwards."""
    require_checkout_writes()
    package, pipeline = ROOT / "connectors" / "products_db", DEFS_FOLDER / "products"
    assert not package.exists() and not pipeline.exists(), "leftovers of an earlier tutorial run"
    monkeypatch.setattr(REGISTRY, "_loaded", dict(REGISTRY._loaded))
    try:
        yield tmp_path
    finally:
        shutil.rmtree(package, ignore_errors=True)
        shutil.rmtree(pipeline, ignore_errors=True)
        for module in [m for m in sys.modules if m.startswith("connectors.products_db")]:
            del sys.modules[module]


@pytest.mark.checkout_writes
def test_the_tutorial_works_end_to_end(
    tutorial_project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = blocks()
    assert set(files) == {
        "make_products_db.py",
        "connectors/products_db/config.py",
        "connectors/products_db/__init__.py",
        "connectors/products_db/tests/test_products_db.py",
        "dagster_project/defs/products/defs.yaml",
    }
    # 1. The source.
    script = tutorial_project / "make_products_db.py"
    script.write_text(files["make_products_db.py"])
    database = tutorial_project / "products.db"
    subprocess.run([sys.executable, str(script), str(database)], check=True, timeout=60)
    monkeypatch.setenv("PRODUCTS_DB", str(database))  # the tutorial's `export`
    # 2. Scaffold, 3-5. replace the files, 6. declare the pipeline.
    assert (
        main(["new", "connector", "products_db", "--kind", "batch", "--dir", str(ROOT / "connectors")]) == 0
    )
    for path, body in files.items():
        if path != "make_products_db.py":
            (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
            (ROOT / path).write_text(body)

    # The connector's own tests run (make test collects connectors/<name>/tests).
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "connectors/products_db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0 and " passed" in tests.stdout, tests.stdout + tests.stderr

    # 7. Check (lakegate check and dg check defs), run, look.
    capsys.readouterr()
    assert main(["check"]) == 0
    assert "6 pipeline(s) valid" in capsys.readouterr().out
    dg_cli = str(Path(sys.executable).with_name("dg"))
    checked = subprocess.run([dg_cli, "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert main(["run", "products"]) == 0
    log = capsys.readouterr().err
    assert "catalog/products ingest: 5 row(s) in, 3 committed, 2 quarantined" in log
    assert str(database) not in log  # the env value is never echoed

    assert (
        main(
            [
                "table",
                "curated",
                "catalog/products",
                "--head",
                "5",
                "--columns",
                "id,name,price",
                "--json",
            ]
        )
        == 0
    )
    curated = json.loads(capsys.readouterr().out)
    assert sorted((r["id"], r["name"]) for r in curated) == [(1, "Kettle"), (2, "Lamp"), (4, "Desk")]

    assert main(["quarantine", "catalog/products", "--json"]) == 0
    rules = {g["rule"]: g for g in json.loads(capsys.readouterr().out)}
    assert set(rules) == {"cast_schema", "invalid_encoding"}
    assert rules["invalid_encoding"]["samples"][0]["raw"] == "5,K\\xe4se board,12"
    assert rules["invalid_encoding"]["samples"][0]["position"] == 5

    # The UI shows the source by its env reference, never the value.
    landing = (
        defs().resolve_asset_graph().get(__import__("dagster").AssetKey(["catalog", "products", "landing"]))
    )
    assert "${PRODUCTS_DB}" in (landing.description or "") and str(database) not in landing.description

    # A second run over the unchanged source commits nothing new.
    assert main(["run", "products"]) == 0
    assert open_zone("raw", load_config()).read("catalog", "products").height == 3
