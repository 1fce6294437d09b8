"""Shared fixtures: every test gets its own LAKEGATE_HOME, DAGSTER_HOME and PII key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

PII_KEY = "test-pii-key-0123456789abcdef"


def isolate(mp: pytest.MonkeyPatch, root: Path) -> Path:
    """Point every lakegate and Dagster location at ``root``; returns LAKEGATE_HOME."""
    home = root / "home"
    mp.setenv("LAKEGATE_HOME", str(home))
    mp.setenv("DAGSTER_HOME", str(root / "dagster"))
    mp.setenv("LAKEGATE_PII_KEY", PII_KEY)
    mp.setenv("RUNTIME__LOG_LEVEL", "ERROR")  # what instance.prepare() sets, undone after the test
    mp.delenv("LAKEGATE_CONFIG", raising=False)
    for zone in ("LANDING", "RAW", "CURATED", "PII", "QUARANTINE"):
        mp.delenv(f"LAKEGATE_ZONE_{zone}_URL", raising=False)
    return home


@pytest.fixture
def lakegate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, isolated LAKEGATE_HOME for one test."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated LAKEGATE_HOME shared by the tests of one module."""
    with pytest.MonkeyPatch.context() as mp:
        yield isolate(mp, tmp_path_factory.mktemp("lakegate"))
