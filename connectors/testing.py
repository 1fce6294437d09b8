"""Conformance kit: the checks every lakegate connector passes, by capability.

Like fsspec's abstract test suites, a connector's test module subclasses the class of its kind —
:class:`BatchTests`, :class:`ReplicationTests` or :class:`StreamingTests` — and implements its hooks;
pytest then collects the kit's ``test_*`` methods on the subclass::

    class TestOrdersConformance(BatchTests):
        connector_name = "orders"

        def make_config(self, tmp_path: Path) -> dict[str, Any]:
            (tmp_path / "orders.csv").write_text("id\\n1\\n2\\n")
            return {"url": (tmp_path / "orders.csv").as_uri()}

        def make_bad_config(self, tmp_path: Path) -> tuple[dict[str, Any], int, int]:
            (tmp_path / "bad.csv").write_text("id,name\\n1,a\\n2\\n")  # line 3 is ragged
            return {"url": (tmp_path / "bad.csv").as_uri()}, 1, 1  # config, good rows, rejects

Everything runs for real: the connector is looked up in the registry, its resource is iterated directly
and run through real dlt pipelines (state under a temporary ``pipelines_dir``) into a tiny in-test
destination. :func:`load`, :func:`assert_lineage` and :func:`positions` are public so connector-specific
tests reuse them. Each :func:`load` runs an isolated pipeline (deactivated afterwards) and re-raises the
connector's own exception, not dlt's wrapper.
"""

from __future__ import annotations

import time
from collections import Counter
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

from connectors._contract import Connector, ConnectorConfigError, Kind
from connectors._registry import REGISTRY, connector_names, get_connector
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE
from lakegate.package import STATE_KEY, UNITS

__all__ = [
    "BatchTests",
    "ConnectorConformance",
    "ReplicationTests",
    "StreamingTests",
    "assert_lineage",
    "data_rows",
    "load",
    "positions",
    "rejects",
]

_UNKNOWN_KEY = "conformance_unknown_key"


def load(
    data: DltSource | DltResource,
    pipelines_dir: Path,
    pipeline_name: str = "conformance",
    *,
    extract_only: bool = False,
    committed: dict[str, int] | None = None,
) -> list[pa.Table]:
    """Run ``data`` through a real dlt pipeline and return the Arrow tables the destination received.

    The destination is a ``@dlt.destination`` with ``batch_size=0`` and parquet load files, the way the
    lakegate zone destination receives them. dlt keeps the pipeline state (and so the connector's
    resource state) under ``pipelines_dir``: calling ``load`` again with the same directory and name is
    the next scheduled run; it first loads what an earlier ``extract_only`` call (a run that crashed
    before its load) left pending. ``committed`` plays the zone for units a batch connector records in
    its load packages (:mod:`lakegate.package`): each loaded one is added (source -> 1), to pass back
    in ``resume``.

    Raises:
        Exception: whatever the connector raised while extracting, unwrapped from dlt's step errors.
    """
    loaded: list[pa.Table] = []

    @dlt.destination(batch_size=0, loader_file_format="parquet", name="conformance")
    def capture(items: TDataItems, table: TTableSchema) -> None:
        loaded.append(pq.read_table(str(items)))  # with batch_size=0, items is the load file's path
        if committed is not None:
            units = dlt.current.load_package_state()["state"].get(STATE_KEY, {}).get(UNITS, {})  # type: ignore[attr-defined]
            committed.update(dict.fromkeys(units, 1))

    pipeline = dlt.pipeline(
        pipeline_name, destination=capture, pipelines_dir=str(pipelines_dir), dataset_name=pipeline_name
    )
    try:
        if extract_only:
            pipeline.extract(data)
        else:
            if pipeline.has_pending_data:
                pipeline.run()
            pipeline.run(data)
    except Exception as exc:
        raise _root_cause(exc) from None
    finally:
        pipeline.deactivate()  # a later direct iteration must not resume from this pipeline's state
    return loaded


def _root_cause(exc: BaseException) -> BaseException:
    """The connector's own exception inside dlt's ``PipelineStepFailed``/``ResourceExtractionError``."""
    while exc.__cause__ is not None and type(exc).__module__.startswith("dlt."):
        exc = exc.__cause__
    return exc


def _rejected(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Boolean mask of the reject rows (those with a reject rule)."""
    if REJECT_RULE in table.schema.names:
        return pc.is_valid(table[REJECT_RULE])
    return pa.repeat(pa.scalar(False), table.num_rows)


def data_rows(tables: list[pa.Table]) -> int:
    """Number of data rows (rows that are not rejects) in ``tables``."""
    return sum(t.num_rows - pc.sum(_rejected(t), min_count=0).as_py() for t in tables)


def rejects(tables: list[pa.Table]) -> list[dict[str, Any]]:
    """The reject rows of ``tables`` as dicts of their reserved columns."""
    found: list[dict[str, Any]] = []
    for table in tables:
        rows = table.filter(_rejected(table))
        columns = [
            c for c in (SOURCE, POSITION, REJECT_RULE, REJECT_REASON, RAW_TEXT) if c in rows.schema.names
        ]
        found += rows.select(columns).to_pylist()
    return found


def positions(tables: list[pa.Table]) -> Counter[tuple[str, int]]:
    """How often each ``(source, position)`` of a data row occurs in ``tables``."""
    seen: Counter[tuple[str, int]] = Counter()
    for table in tables:
        rows = table.filter(pc.invert(_rejected(table)))
        seen.update(zip(rows[SOURCE].to_pylist(), rows[POSITION].to_pylist(), strict=True))
    return seen


def assert_lineage(table: pa.Table) -> None:
    """Assert ``table`` carries the reserved columns of the connector contract.

    Every table has the source (string) and position (int64) columns, both set on every data row;
    reject rows carry a reject rule and a non-empty reject reason.
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
    reject_rows = table.filter(rejected)
    if reject_rows.num_rows:
        reasons = pc.utf8_length(pc.utf8_trim_whitespace(reject_rows[REJECT_REASON]))
        assert reasons.null_count == 0 and pc.min(reasons).as_py() > 0, "a reject row has no reason"
        assert reject_rows[SOURCE].null_count == 0, f"a reject row has no {SOURCE}"
    data = table.filter(pc.invert(rejected))
    assert data[SOURCE].null_count == 0 and data[POSITION].null_count == 0, (
        f"a data row lacks {SOURCE} or {POSITION}"
    )


class ConnectorConformance:
    """What every connector passes, whatever its kind. Subclass the class of your connector's kind.

    Attributes:
        connector_name: Registry name of the connector under test.
        kind: The kind the subclass tests (set by the kind's class).
    """

    connector_name: ClassVar[str]
    kind: ClassVar[Kind]

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
        assert REGISTRY.loaded()[self.connector_name] is connector

    def test_kind_matches_the_kit(self, connector: Connector[Any]) -> None:
        assert connector.kind is self.kind, f"a {connector.kind} connector tested with the {self.kind} kit"

    def test_describes_its_source(self, connector: Connector[Any], raw_config: dict[str, Any]) -> None:
        line = connector.source_line(raw_config)
        assert line.startswith(connector.name) and "\n" not in line
        assert connector.ui_kinds and len(connector.ui_kinds) <= 3

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

    def test_pipeline_run_loads_lineage_and_each_position_once(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        loaded = load(connector.build(raw_config), tmp_path_factory.mktemp("pipelines"))
        assert data_rows(loaded) > 0, "the pipeline loaded no data rows"
        for table in loaded:
            assert_lineage(table)
        assert max(positions(loaded).values()) == 1, "a (source, position) was loaded twice"


class BatchTests(ConnectorConformance):
    """A batch connector: each unit of input (file, extract) is loaded once; bad records are rejects."""

    kind = Kind.BATCH

    def make_bad_config(self, tmp_path: Path) -> tuple[dict[str, Any], int, int]:
        """Prepare a source holding good and malformed records.

        Returns:
            The raw config, how many good records it holds, and how many records must be rejected.
        """
        raise NotImplementedError(f"{type(self).__name__} must define make_bad_config(self, tmp_path)")

    def test_second_run_loads_nothing(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        pipelines_dir = tmp_path_factory.mktemp("pipelines")
        committed: dict[str, int] = {}
        assert data_rows(load(connector.build(raw_config), pipelines_dir, committed=committed)) > 0
        if connector.positions is not None:  # it resumes from the zone: a fresh machine, no dlt folder
            raw_config = connector.resumed(raw_config, committed)
            pipelines_dir = tmp_path_factory.mktemp("pipelines")
        again = load(connector.build(raw_config), pipelines_dir)
        assert sum(t.num_rows for t in again) == 0, "a second run over unchanged input loaded rows again"

    def test_bad_records_become_rejects_and_the_rest_loads(
        self, connector: Connector[Any], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        raw_config, good, bad = self.make_bad_config(tmp_path)
        loaded = load(connector.build(raw_config), tmp_path_factory.mktemp("pipelines"))
        found = rejects(loaded)
        assert data_rows(loaded) == good, f"expected {good} good rows, loaded {data_rows(loaded)}"
        assert len(found) == bad, f"expected {bad} reject rows, got {len(found)}"
        for row in found:
            assert row[REJECT_RULE] and row[REJECT_REASON] and row[SOURCE], row
            assert row.get(RAW_TEXT) is not None, "a rejected record must keep its raw text"


class ReplicationTests(ConnectorConformance):
    """A replication connector: resumes from the committed source position, nothing lost or repeated."""

    kind = Kind.REPLICATION

    def change_source(self, raw_config: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], int]:
        """Apply new changes at the source (inserts, updates, deletes).

        Returns:
            The raw config to read with next (often the same) and how many change records were added.
        """
        raise NotImplementedError(f"{type(self).__name__} must define change_source(self, raw_config, ...)")

    def test_resumes_after_the_committed_position(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        pipelines_dir = tmp_path_factory.mktemp("pipelines")
        first = load(connector.build(raw_config), pipelines_dir)
        assert data_rows(first) > 0
        config, added = self.change_source(raw_config, tmp_path)
        second = load(connector.build(config), pipelines_dir)
        assert data_rows(second) == added, f"{added} changes made, {data_rows(second)} loaded"
        before, after = positions(first), positions(second)
        assert not before.keys() & after.keys(), "a change was loaded again"
        assert sum(t.num_rows for t in load(connector.build(config), pipelines_dir)) == 0

    def test_a_crash_before_the_load_loses_and_repeats_nothing(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        pipelines_dir = tmp_path_factory.mktemp("pipelines")
        expected = data_rows(list(connector.build(raw_config)))
        assert not load(connector.build(raw_config), pipelines_dir, extract_only=True)  # died before loading
        config, added = self.change_source(raw_config, tmp_path)
        loaded = load(connector.build(config), pipelines_dir)
        assert data_rows(loaded) == expected + added
        assert max(positions(loaded).values()) == 1, "a change was loaded twice"


class StreamingTests(ConnectorConformance):
    """A streaming connector: each run is bounded, and every message is loaded exactly once."""

    kind = Kind.STREAMING
    max_run_seconds: ClassVar[float] = 60.0

    def produce(self, raw_config: dict[str, Any], tmp_path: Path, count: int) -> dict[str, Any]:
        """Publish ``count`` new messages to the source; return the raw config to read with next."""
        raise NotImplementedError(f"{type(self).__name__} must define produce(self, raw_config, ...)")

    def test_runs_are_bounded_and_exactly_once(
        self,
        connector: Connector[Any],
        raw_config: dict[str, Any],
        tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        pipelines_dir = tmp_path_factory.mktemp("pipelines")
        started = time.monotonic()
        first = load(connector.build(raw_config), pipelines_dir)
        config = self.produce(raw_config, tmp_path, 7)
        second = load(connector.build(config), pipelines_dir)
        idle = load(connector.build(config), pipelines_dir)
        assert time.monotonic() - started < 3 * self.max_run_seconds, "a run did not stop by itself"
        assert data_rows(second) == 7, f"7 messages produced, {data_rows(second)} loaded"
        assert sum(t.num_rows for t in idle) == 0, "a run with nothing new loaded rows"
        seen = positions(first) + positions(second)
        assert max(seen.values()) == 1, "a message was loaded twice"
