"""The write path against the S3 API (a real moto server): same commits, same idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pytest
import s3fs

from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_pipeline, load_config, open_zone

pytestmark = pytest.mark.s3
BUCKET = "lake"


@pytest.fixture
def s3_zones(lakegate_home: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every data zone in one bucket of the moto server, credentials by environment variable."""
    storage = (
        "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
        "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
    )
    config = lakegate_home.parent / "lakegate.yaml"
    config.write_text(
        "zones:\n"
        + "".join(
            f"  {z}: {{url: 's3://{BUCKET}/{z}', storage: {storage}}}\n"
            for z in ("raw", "curated", "pii", "quarantine")
        )
    )
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_endpoint).mkdir(BUCKET)
    return s3_endpoint


def test_raw_commit_on_s3_is_typed_audited_and_idempotent(s3_zones: str, lakegate_home: Path) -> None:
    config = load_config()
    spec = DatasetSpec(domain="shop", name="items", schema={"id": "int64", "price": "float64"})
    table = pa.table(
        {
            "id": ["1", "2", "3"],
            "price": ["1.5", "x", "2"],
            "_lakegate_source": ["mem://a"] * 3,
            "_lakegate_position": [1, 2, 3],
        }
    )

    def run(run_id: str) -> LoadReport:
        report = LoadReport()
        target = LoadTarget(dataset=spec, zone=ZoneName.RAW, pipeline="s3", run_id=run_id, config=config)

        @dlt.resource(name="items")
        def items() -> Iterator[pa.Table]:
            yield table

        with lakegate_pipeline("s3_items", target, report, lakegate_home / "dlt") as pipeline:
            pipeline.run(items())
        return report

    report = run("r1")
    assert (report.committed_rows, report.quarantined_rows) == (2, 1)
    raw = open_zone("raw", config)
    assert raw.config.url == f"s3://{BUCKET}/raw"
    assert sorted(raw.read("shop", "items")["id"].to_list()) == [1, 3]
    assert open_zone("quarantine", config).read("shop", "items").height == 1
    version = raw.delta_table("shop", "items").version()  # type: ignore[union-attr]
    report = run("r2")  # a new load of the same rows is new data: appended again, versioned
    assert raw.delta_table("shop", "items").version() == version + 1  # type: ignore[union-attr]
