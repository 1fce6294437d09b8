"""The connector registry: lookups, refusals, the decorator and entry-point discovery with real plug-ins."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pytest
from dlt.extract import DltResource

from connectors import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    Connector,
    ConnectorConfig,
    ConnectorRegistrationError,
    Kind,
    UnknownConnectorError,
    connector,
    connector_names,
    get_connector,
    register_connector,
)


def _factory(config: ConnectorConfig) -> DltResource:
    return dlt.resource([pa.table({"x": [1]})], name="x")


def _make(name: str) -> Connector[ConnectorConfig]:
    return Connector(name=name, kind=Kind.BATCH, config_model=ConnectorConfig, factory=_factory)


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees a copy of the registry's loaded connectors (restored afterwards)."""
    monkeypatch.setattr(REGISTRY, "_loaded", dict(REGISTRY._loaded))
    monkeypatch.setattr(REGISTRY, "_in_process", set(REGISTRY._in_process))


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownConnectorError, match=r"unknown connector 'nope'; known connectors: .*\bfiles\b"
    ):
        get_connector("nope")
    with pytest.raises(UnknownConnectorError, match=r"unknown connector 'fils' \(did you mean 'files'\?\)"):
        get_connector("fils")


def test_taken_name_is_refused() -> None:
    first = register_connector(_make("taken"))
    with pytest.raises(ConnectorRegistrationError, match="'taken' is already registered"):
        register_connector(_make("taken"))
    assert get_connector("taken") is first


def test_builtin_name_is_refused_even_before_the_builtin_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(REGISTRY, "_loaded", {})
    with pytest.raises(ConnectorRegistrationError, match="'files' is already registered"):
        register_connector(_make("files"))


def test_decorator_registers() -> None:
    @connector("decorated")
    def decorated() -> Connector[ConnectorConfig]:
        return _make("decorated")

    assert get_connector("decorated") is decorated
    assert "decorated" in connector_names()


def test_decorator_refuses_a_connector_of_another_name() -> None:
    with pytest.raises(ConnectorRegistrationError, match="resolves to a connector named 'other'"):
        connector("wanted")(lambda: _make("other"))
    assert "other" not in connector_names()


PluginFactory = Callable[[str, str, str], None]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginFactory]:
    """Install real tiny distributions on ``sys.path``: ``plugin(dist, entry_point_line, module_source)``."""
    site = tmp_path / "site"
    site.mkdir()
    modules: list[str] = []

    def install(dist: str, entry_point: str, source: str) -> None:
        info = site / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point}\n")
        (site / f"{dist}.py").write_text(source)
        modules.append(dist)

    monkeypatch.syspath_prepend(str(site))
    yield install
    for module in modules:
        sys.modules.pop(module, None)


PLUGIN_SOURCE = """
import dlt
import pyarrow as pa
from connectors import Connector, ConnectorConfig, Kind

def rows(config):
    return dlt.resource([pa.table({"x": [1]})], name="plugged")

connector = Connector(name="plugged", kind=Kind.STREAMING, config_model=ConnectorConfig, factory=rows)
"""


def test_entry_point_plugin_is_discovered(plugin: PluginFactory) -> None:
    plugin("lakegate_plugged", "plugged = lakegate_plugged:connector", PLUGIN_SOURCE)

    assert "plugged" in connector_names()
    found = get_connector("plugged")
    assert found.kind is Kind.STREAMING
    assert found.factory.__module__ == "lakegate_plugged"


def test_broken_entry_point_names_itself(plugin: PluginFactory) -> None:
    plugin("lakegate_broken", "broken = lakegate_broken:missing", "connector = None\n")

    with pytest.raises(
        ConnectorRegistrationError, match=r"connector 'broken': lakegate_broken has no attribute"
    ):
        get_connector("broken")
    assert get_connector("files").name == "files"  # one broken plug-in does not hide the others
