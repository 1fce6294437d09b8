"""A held pipeline reads its stored schema again only when the schema file changed: dlt's own storage
re-reads it on every access (~9 a run), as if another process could have saved one meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pytest
from dlt.common.schema import Schema
from dlt.common.storages import SchemaStorage
from dlt.common.storages.configuration import SchemaStorageConfiguration

from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, load_config
from zones.pipeline import lakegate_pipeline

SPEC = DatasetSpec(domain="shop", name="items", schema={"id": "int64"}, primary_key=("id",))


def _target() -> LoadTarget:
    return LoadTarget(dataset=SPEC, zone=ZoneName.RAW, pipeline="p", run_id="r", config=load_config())


@dlt.resource(name="items")
def _items(*ids: int) -> Any:
    yield pa.table({"id": pa.array(ids, pa.int64())})


def test_a_held_pipeline_reads_its_schema_file_only_when_it_changed(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    load_schema = SchemaStorage.load_schema

    def counted(self: SchemaStorage, name: str) -> Schema:
        reads.append(name)
        return load_schema(self, name)

    with lakegate_pipeline("held", _target(), LoadReport()) as pipeline:
        pipeline.run(_items(1, 2))
    monkeypatch.setattr(SchemaStorage, "load_schema", counted)

    with lakegate_pipeline("held", _target(), LoadReport()) as pipeline:
        first = pipeline.default_schema
        reads.clear()
        assert all(pipeline.default_schema is first for _ in range(5)) and reads == []
        assert "items" in first.tables

        # another writer saves a new version of the schema file: the next access reads it
        folder = Path(pipeline.working_dir) / "schemas"
        other = SchemaStorage(SchemaStorageConfiguration(schema_volume_path=str(folder)))
        changed = other.load_schema(pipeline.default_schema_name)
        changed.update_table({"name": "added", "columns": {"x": {"name": "x", "data_type": "text"}}})
        other.save_schema(changed)
        reads.clear()
        assert "added" in pipeline.default_schema.tables and len(reads) == 1

        # and a run still evolves and saves the schema as dlt does
        pipeline.run(_items(3))
    assert "added" in pipeline.default_schema.tables and "items" in pipeline.default_schema.tables
