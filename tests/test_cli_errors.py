"""Bad input as a stranger would type it: one clear line on stderr, no traceback, nothing lost."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.cli import DEFS_FOLDER, main
from pipelines.demo import write_demo
from zones import load_config

LAKEGATE = str(Path(sys.executable).parent / "lakegate")


def defs_copy(tmp_path: Path, edit: str, replacement: str, pipeline: str = "orders") -> Path:
    folder = tmp_path / "defs"
    shutil.copytree(DEFS_FOLDER, folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    target = folder / pipeline / "defs.yaml"
    text = target.read_text()
    assert edit in text
    target.write_text(text.replace(edit, replacement))
    return folder


@pytest.mark.parametrize(
    ("edit", "replacement", "expected"),
    [
        (
            "type: files",
            "type: fils",
            r"attributes\.connector: unknown connector 'fils' \(did you mean 'files'\?\); "
            r"known connectors: files",
        ),
        (
            "[normalize_strings, dedupe_latest]",
            "[normalize_strings, dedupe_lastest]",
            r"attributes\.transforms: unknown transform 'dedupe_lastest' \(did you mean 'dedupe_latest'\?\); "
            r"known transforms: cast_schema",
        ),
        ("pattern: ELT", "pattern: ELTT", r"attributes\.pattern: Input should be 'EL', 'ELT' or 'ETL'"),
        (
            "primary_key: [order_id]",
            "primary_key: [order_no]",
            r"attributes\.primary_key: order_no not declared",
        ),
        (
            '{type: int64, description: "Customer placing the order"}',
            "{type: integr}",
            r"attributes\.columns\.customer_id\.type: .*unsupported type 'integr'",
        ),
        (
            'config: {url: "lakegate://landing/sales/orders/*.csv"}',
            'config: {url: "x", delimter: ";"}',
            r"config\.delimter: unknown key \(did you mean 'delimiter'\?\); valid keys: url, format",
        ),
        (
            "order_by: [updated_at]",
            "orderby: [updated_at]",
            r"attributes\.orderby: unknown key \(did you mean 'order_by'\?\)",
        ),
        (
            "type: expect_column_values_to_be_between",
            "type: expect_column_values_between",
            r"quality\.expectations\[0\] unknown expectation 'expect_column_values_between': "
            r"did you mean 'expect_column_values_to_be_between'\?",
        ),
        (
            "kwargs: {column: amount, min_value: 0}",
            "kwargs: {column: amout, min_value: 0}",
            r"quality\.expectations\[0\] expect_column_values_to_be_between: column 'amout' is not declared "
            r"under columns \(did you mean 'amount'\?\)",
        ),
    ],
)
def test_lakegate_check_names_file_field_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, replacement: str, expected: str
) -> None:
    folder = defs_copy(tmp_path, edit, replacement)
    assert main(["check", "--defs", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(folder / "orders" / "defs.yaml") in err
    assert re.search(expected, err), err
    assert "Traceback" not in err


def test_lakegate_check_reports_broken_yaml_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = defs_copy(tmp_path, "  domain: sales", "  domain: [sales")
    assert main(["check", "--defs", str(folder)]) == 2
    assert "orders/defs.yaml: line" in capsys.readouterr().err


def test_missing_pii_key_is_one_line_and_nothing_is_lost(
    lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_demo(load_config(), rows=20)
    env = {k: v for k, v in os.environ.items() if k != "LAKEGATE_PII_KEY"}
    done = subprocess.run(
        [LAKEGATE, "run", "customers"], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lakegate: error: pipeline 'customers' failed")
    assert "LAKEGATE_PII_KEY is not set" in last
    assert "Traceback" not in done.stderr
    # The drop was not consumed: with the key set, the next run ingests all of it (in this process: a
    # second CLI process would only add its start-up).
    assert main(["run", "customers"]) == 0
    capsys.readouterr()
    assert main(["table", "curated", "crm/customers"]) == 0
    rows = manifest.distinct_keys["crm/customers"]
    assert capsys.readouterr().out.split(": ")[1].startswith(f"{rows} rows")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["run", "nope"],
            "lakegate: error: unknown pipeline 'nope'; pipelines: crm/customers, sales/orders, "
            "warehouse/inventory, web/clickstream, web/events",
        ),
        (["run", "ordrs"], "lakegate: error: unknown pipeline 'ordrs' (did you mean 'orders'?)"),
        (["table", "raw", "sales"], "lakegate: error: dataset 'sales' must be DOMAIN/DATASET"),
        (["table", "lake", "sales/orders"], "lakegate: error: unknown zone 'lake'; zones are: landing, raw"),
        (
            ["table", "curatd", "sales/orders"],
            "lakegate: error: unknown zone 'curatd' (did you mean 'curated'?)",
        ),
        (["table", "raw", "sales/nothing"], "lakegate: error: no table raw/sales/nothing"),
        (["table", "raw", "sales/nothing", "--version", "3"], "lakegate: error: no table raw/sales/nothing"),
        (["new", "connector", "Bad-Name", "--kind", "batch"], "lakegate: error: "),
    ],
)
def test_user_mistakes_are_one_clear_line(
    lakegate_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(expected), err


def test_unknown_zone_in_config_file(
    lakegate_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lakegate.yaml"
    config.write_text("zones:\n  lake: {url: 's3://x/y'}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    assert main(["table", "raw", "sales/orders"]) == 2
    assert f"{config}: zones.lake: unknown zone" in capsys.readouterr().err


def test_a_version_that_does_not_exist(lakegate_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_demo(load_config(), rows=20)
    assert main(["run", "events"]) == 0
    capsys.readouterr()
    assert main(["table", "raw", "web/events", "--version", "99"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lakegate: error: raw/web/events has no version 99; the latest is 0"
    )


def test_a_bug_in_a_step_keeps_its_traceback(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only lakegate's own errors become one line: a KeyError is a bug, and its traceback is shown."""

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("deliberate")

    write_demo(load_config(), rows=20)
    monkeypatch.setattr("pipelines._flow.ingest_source", broken)
    assert main(["run", "events"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and "deliberate" in err
    assert "lakegate: pipeline 'events' crashed" in err
