"""Seeded fuzz of the ``files`` connector: malformed CSV, NDJSON and Parquet; every record accounted for.

The generator and the checker live in ``benchmarks/fuzz_files.py`` (run it for longer fuzzing); this test
runs a fixed seed in the normal suite.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

CASES = 160
SEED = 20_260_301


def _fuzzer() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_files.py"
    spec = importlib.util.spec_from_file_location("fuzz_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_every_generated_record_is_a_data_row_or_a_reject_exactly_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    cases, mismatches, malformed = _fuzzer().run(CASES, SEED, out)
    print(out.getvalue(), end="")
    assert cases == CASES and malformed >= 1_000
    assert mismatches == 0, out.getvalue()
    assert f"fuzz: {CASES} cases, 0 mismatches" in capsys.readouterr().out


def test_the_checker_catches_a_lost_record(tmp_path: Path) -> None:
    fuzz = _fuzzer()
    case = fuzz.make_case(SEED, 0, tmp_path)
    assert fuzz.check(case) is None
    case.expected.append((case.expected[0][0], 10**9, fuzz.DATA, "never-written"))
    assert "expected but missing" in fuzz.check(case)
