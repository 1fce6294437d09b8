"""A commit lands but its answer is lost (a connection reset after the store wrote it): dlt puts the load
job back among the new ones and loads the package's other job first — which, with a job still to load,
is not the last and commits no package positions — then retries this one, now the last and a replay. The
package's positions (here the landing files it ingested) must still be recorded, or the next run reads
the files again and raw holds their rows twice (seen under the S3 fault proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import Transaction
from dlt.common.storages.load_package import PackageStorage, ParsedLoadJobFileName

import pipelines
from pipelines import PipelineSpec
from zones import ZoneName, _staged, load_config, open_zone


def _spec(url: str) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "primary_key": ["id"],
            "columns": {"id": {"type": "int64"}, "qty": {"type": "int32"}},
        }
    )


def test_a_replayed_last_job_still_records_the_files_it_ingested(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = lakegate_home / "in"
    drop.mkdir(parents=True)
    (drop / "a.csv").write_text("id,qty\n1,1\n2,x\n3,3\n")  # a bad value: a second load job (text rows)
    commit = _staged.commit
    lost: list[str] = []

    def answer_lost_once(
        uri: str, schema: Any, files: Any, column: str, options: Any, txns: list[Transaction], *a: Any
    ) -> None:
        commit(uri, schema, files, column, options, txns, *a)
        # The package's first job: the other one still to load, its commit carries no positions.
        if not lost and not any(t.app_id.startswith("pos:file:") for t in txns):
            lost.append(uri)
            raise OSError("connection reset by peer (after the store wrote the commit)")

    monkeypatch.setattr(_staged, "commit", answer_lost_once)
    listed = PackageStorage.list_new_jobs

    def retried_last(self: PackageStorage, load_id: str) -> list[str]:  # dlt's order is not fixed
        return sorted(
            listed(self, load_id), key=lambda rel: ParsedLoadJobFileName.parse(Path(rel).name).retry_count
        )

    monkeypatch.setattr(PackageStorage, "list_new_jobs", retried_last)
    spec = _spec(f"{drop.as_uri()}/*.csv")
    pipelines.ingest(spec, run_id="run-1")
    assert lost, "a commit of the package's first job lost its answer once"

    second = pipelines.ingest(spec, run_id="run-2")
    assert second.input_rows == 0, "the file was recorded as ingested: not read again"
    raw = open_zone(ZoneName.RAW, load_config()).read("shop", "orders")
    quarantine = open_zone(ZoneName.QUARANTINE, load_config()).read("shop", "orders")
    assert sorted(raw["id"].to_list()) == [1, 3] and quarantine.height == 1
