"""``lakegate new connector``: the scaffolded package imports, registers and passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import REGISTRY, Kind, connector_names, get_connector
from pipelines.scaffold import ScaffoldError, scaffold_connector
from tests.conftest import require_checkout_writes

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a Python tool from the project root with ``tmp_path`` importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def in_connectors(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique connector name scaffolded into the real ``connectors/`` folder, removed afterwards."""
    require_checkout_writes()
    name = f"zz_scaffold_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(REGISTRY, "_loaded", dict(REGISTRY._loaded))
    try:
        yield name
    finally:
        shutil.rmtree(ROOT / "connectors" / name, ignore_errors=True)
        for module in [m for m in sys.modules if m.startswith(f"connectors.{name}")]:
            del sys.modules[module]


@pytest.mark.checkout_writes
@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_scaffolded_connector_passes_its_conformance_tests_in_the_suite(
    in_connectors: str, tmp_path: Path, kind: str
) -> None:
    written = scaffold_connector(in_connectors, kind, ROOT / "connectors")

    package = ROOT / "connectors" / in_connectors
    test_file = package / "tests" / f"test_{in_connectors}.py"
    assert set(written) == {
        package / "__init__.py",
        package / "config.py",
        package / "README.md",
        package / "tests" / "__init__.py",
        test_file,
    }
    # `make test` runs pytest with the project's testpaths: the new tests are part of the suite.
    collected = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", "-m", "not ui"], tmp_path
    )
    assert f"connectors/{in_connectors}/tests/test_{in_connectors}.py::" in collected.stdout, collected.stdout
    inner = run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 't'}", str(test_file)],
        tmp_path,
    )
    assert inner.returncode == 0, inner.stdout + inner.stderr
    assert " passed" in inner.stdout and "skipped" not in inner.stdout, inner.stdout


def test_scaffolded_code_is_ruff_clean(tmp_path: Path) -> None:
    for kind in Kind:
        scaffold_connector(f"crm_{kind.value}", kind.value, tmp_path)

    lint = run(["-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)], tmp_path)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.checkout_writes
def test_scaffolded_connector_is_found_by_name_with_its_kind(in_connectors: str) -> None:
    scaffold_connector(in_connectors, "replication", ROOT / "connectors")

    assert in_connectors in connector_names()
    assert get_connector(in_connectors).kind is Kind.REPLICATION


def test_readme_names_the_entry_point_of_the_enclosing_package(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "__init__.py").write_text("")

    scaffold_connector("crm_api", "streaming", tmp_path / "acme")

    readme = (tmp_path / "acme" / "crm_api" / "README.md").read_text()
    assert '[project.entry-points."lakegate.connectors"]\ncrm_api = "acme.crm_api:connector"' in readme


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("CrmApi", "batch", "invalid connector name 'CrmApi'"),
        ("1crm", "batch", "invalid connector name '1crm'"),
        ("crm-api", "batch", "invalid connector name 'crm-api'"),
        ("class", "batch", "invalid connector name 'class'"),
        ("files", "batch", "connector name 'files' is taken; known connectors: "),
        ("crm_api", "cdc", "invalid kind 'cdc': choose one of batch, replication, streaming"),
    ],
)
def test_invalid_input_is_refused_in_one_line(tmp_path: Path, name: str, kind: str, message: str) -> None:
    with pytest.raises(ScaffoldError) as caught:
        scaffold_connector(name, kind, tmp_path)

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_package_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "crm_api").mkdir()
    (tmp_path / "crm_api" / "keep.py").write_text("mine = True\n")

    with pytest.raises(ScaffoldError, match="crm_api already exists; pick another name or remove it"):
        scaffold_connector("crm_api", "batch", tmp_path)
    assert [p.name for p in (tmp_path / "crm_api").iterdir()] == ["keep.py"]


def test_missing_target_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="does not exist"):
        scaffold_connector("crm_api", "batch", tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
