"""Conformance kit: the checks every lakegate connector passes, reused by each connector's tests.

Like fsspec's abstract test suite, a connector's test module subclasses :class:`ConnectorConformance`,
names the connector and prepares a source holding a few rows; pytest then collects the kit's
``test_*`` methods on the subclass::

    from pathlib import Path
    from typing import Any

    from connectors.testing import ConnectorConformance


    class TestOrdersConformance(ConnectorConformance):
        connector_name = "orders"

        def make_config(self, tmp_path: Path) -> dict[str, Any]:
            (tmp_path / "orders.csv").write_text("id\\n1\\n2\\n")
            return {"url": (tmp_path / "orders.csv").as_uri()}

Everything runs for real: the connector is looked up in the registry, its resource is iterated directly
and run through real dlt pipelines (state under a temporary ``pipelines_dir``) into a tiny in-test
destination. :func:`load` and :func:`assert_lineage` are public so connector-specific tests reuse them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dlt.common.schema import TTableSchema
from dlt.common.typing import TDataItems
from dlt.extract import DltResource, DltSource

from connectors._contract import (
    POSITION,
    REJECT_REASON,
    REJECT_RULE,
    SOURCE,
    Connector,
    ConnectorConfigError,
    Kind,
)
from connectors._registry import connector_names, get_connector, registered

__all__ = ["ConnectorConformance", "assert_lineage", "data_rows", "load"]

_UNKNOWN_KEY = "conformance_unknown_key"


def load(
    data: DltSource | DltResource, pipelines_dir: Path, pipeline_name: str = "conformance"
) -> list[pa.Table]:
    """Run ``data`` through a real dlt pipeline and return the Arrow tables the destination received.

    The destination is a ``@dlt.destination`` with ``batch_size=0`` and parquet load files, the way the
    lakegate zone destination receives them. dlt keeps the pipeline state (and so the connector's
    resource state) under ``pipelines_dir``: calling ``load`` again with the same directory and name is
    the next scheduled run.
    """
    loaded: list[pa.Table] = []

    @dlt.destination(batch_size=0, loader_file_format="parquet", name="conformance")
    def capture(items: TDataItems, table: TTableSchema) -> None:
        loaded.append(pq.read_table(str(items)))  # with batch_size=0, items is the load file's path

    pipeline = dlt.pipeline(
        pipeline_name, destination=capture, pipelines_dir=str(pipelines_dir), dataset_name=pipeline_name
    )
    pipeline.run(data)
    return loaded


def _rejected(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Boolean mask of the reject rows (those with a reject rule)."""
    if REJECT_RULE in table.schema.names:
        return pc.is_valid(table[REJECT_RULE])
    return pa.repeat(pa.scalar(False), table.num_rows)


def data_rows(tables: list[pa.Table]) -> int:
    """Number of data rows (rows that are not rejects) in ``tables``."""
    return sum(t.num_rows - pc.sum(_rejected(t), min_count=0).as_py() for t in tables)


def assert_lineage(table: pa.Table) -> None:
    """Assert ``table`` carries the reserved columns of the connector contract.

    Every table has ``_lakegate_source`` (string) and ``_lakegate_position`` (int64), both set on every
    data row; reject rows carry ``_lakegate_reject_rule`` and a non-empty ``_lakegate_reject_reason``.
    """
    schema = table.schema
    assert SOURCE in schema.names and POSITION in schema.names, f"lineage columns missing: {schema.names}"
    source_type = schema.field(SOURCE).type
    assert pa.types.is_string(source_type) or pa.types.is_large_string(source_type), (
        f"{SOURCE}: {source_type}"
    )
    assert schema.field(POSITION).type == pa.int64(), f"{POSITION}: {schema.field(POSITION).type}"
    assert (REJECT_RULE in schema.names) == (REJECT_REASON in schema.names), (
        f"{REJECT_RULE} and {REJECT_REASON} go together: {schema.names}"
    )
    rejected = _rejected(table)
    rejects = table.filter(rejected)
    if rejects.num_rows:
        reasons = pc.utf8_length(pc.utf8_trim_whitespace(rejects[REJECT_REASON]))
        assert reasons.null_count == 0 and pc.min(reasons).as_py() > 0, "a reject row has no reason"
        assert rejects[SOURCE].null_count == 0, f"a reject row has no {SOURCE}"
    data = table.filter(pc.invert(rejected))
    assert data[SOURCE].null_count == 0 and data[POSITION].null_count == 0, (
        f"a data row lacks {SOURCE} or {POSITION}"
    )


class ConnectorConformance:
    """Base class of a connector's conformance tests; subclass it as ``Test<Name>Conformance``.

    Attributes:
        connector_name: Registry name of the connector under test (its module must be imported, or
            registered by entry point, before the tests run).
        expects_incremental: Whether a second run over unchanged input must load nothing. True for
            every kind by default; a ``streaming``/``replication`` connector may set it to False.
    """

    connector_name: ClassVar[str]
    expects_incremental: ClassVar[bool] = True

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        """Prepare a source holding some rows under ``tmp_path`` and return a valid raw config for it."""
        raise NotImplementedError(f"{type(self).__name__} must define make_config(self, tmp_path)")

    @pytest.fixture
    def connector(self) -> Connector[Any]:
        """The connector under test, looked up by name."""
        return get_connector(self.connector_name)

    @pytest.fixture
    def raw_config(self, tmp_path: Path) -> dict[str, Any]:
        """The subclass's prepared config."""
        return self.make_config(tmp_path)

    def test_registered_under_its_name(self, connector: Connector[Any]) -> None:
        assert connector.name == self.connector_name
        assert self.connector_name in connector_names()
        assert registered()[self.connector_name] is connector

    def test_kind_is_a_kind(self, connector: Connector[Any]) -> None:
        assert isinstance(connector.kind, Kind)

    def test_config_refuses_unknown_keys(self, connector: Connector[Any], raw_config: dict[str, Any]) -> None:
        connector.parse_config(raw_config)
        with pytest.raises(ConnectorConfigError, match=_UNKNOWN_KEY):
            connector.build({**raw_config, _UNKNOWN_KEY: 1})

    def test_builds_a_dlt_resource_or_source(
        self, connector: Connector[Any], raw_config: dict[str, Any]
    ) -> None:
        assert isinstance(connector.build(raw_config), DltResource | DltSource)

    def test_yields_only_arrow_tables_with_lineage(
        self, connector: Connector[Any], raw_config: dict[str, Any]
    ) -> None:
        items = list(connector.build(raw_config))
        assert items, "the prepared source yielded nothing"
        for item in items:
            assert isinstance(item, pa.Table), f"yielded {type(item).__name__}, not a pyarrow.Table"
            assert_lineage(item)
        assert data_rows(items) > 0, "the prepared source yielded no data rows"

    def test_pipeline_run_loads_lineage(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        loaded = load(connector.build(raw_config), tmp_path_factory.mktemp("pipelines"))
        assert data_rows(loaded) > 0, "the pipeline loaded no data rows"
        for table in loaded:
            assert_lineage(table)

    def test_second_run_loads_nothing(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        if not self.expects_incremental:
            pytest.skip(f"{self.connector_name} re-reads its input on every run (expects_incremental=False)")
        pipelines_dir = tmp_path_factory.mktemp("pipelines")
        assert data_rows(load(connector.build(raw_config), pipelines_dir)) > 0
        again = load(connector.build(raw_config), pipelines_dir)
        assert sum(t.num_rows for t in again) == 0, "a second run over unchanged input loaded rows again"
