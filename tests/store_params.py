"""Every zone on one store — local disk, S3 (moto server) or GCS (fake-gcs-server + shim) — for the
end-to-end tests that run the same assertions on each (``@pytest.fixture(params=STORES)``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs

from zones import ZoneName

STORES = ["local", pytest.param("s3", marks=pytest.mark.s3), pytest.param("gcs", marks=pytest.mark.gcs)]

S3_STORAGE = (
    "key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
    "endpoint_url: {env: AWS_ENDPOINT_URL_S3}"
)


def s3_env(mp: pytest.MonkeyPatch, endpoint: str) -> None:
    """The moto server's endpoint and any credentials, as the S3 zones of the tests read them."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",  # never fall back to a cloud metadata address
    }.items():
        mp.setenv(name, value)


def zones_on_store(
    request: pytest.FixtureRequest,
    mp: pytest.MonkeyPatch,
    home: Path,
    store: str,
    settings: Mapping[str, str] | None = None,
    extra: str = "",
) -> None:
    """Write and select a ``lakegate.yaml`` putting every zone (landing too) on ``store``, in a fresh
    bucket for s3/gcs with credentials by environment variable; ``settings`` adds zone settings (e.g.
    ``{"raw": "retention: 30d"}``) and ``extra`` top-level text (e.g. ``holds:``)."""
    settings = settings or {}
    location = ""
    if store != "local":
        bucket = f"lake-{uuid.uuid4().hex[:8]}"
        if store == "s3":
            server = request.getfixturevalue("s3_server")
            s3_env(mp, server.url)
            s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=server.url).mkdir(bucket)
            location = f"url: 's3://{bucket}/{{zone}}', storage: {{{S3_STORAGE}}}"
        else:
            server = request.getfixturevalue("gcs_server")
            mp.setenv("GCS_ENDPOINT_URL", server.url)
            server.create_bucket(bucket)
            location = f"url: 'gs://{bucket}/{{zone}}', storage: {{endpoint_url: {{env: GCS_ENDPOINT_URL}}}}"
    lines = []
    for zone in ZoneName:
        parts = [p for p in (location.replace("{zone}", zone.value), settings.get(zone.value, "")) if p]
        lines.append(f"  {zone.value}: {{{', '.join(parts)}}}\n")
    config = home.parent / "lakegate.yaml"
    config.write_text("zones:\n" + "".join(lines) + extra)
    mp.setenv("LAKEGATE_CONFIG", str(config))


def zone_text(url: str, options: Mapping[str, object]) -> dict[str, str]:
    """Every file under a zone URL as text (Parquet files decoded value by value, Delta logs and
    everything else as written), keyed by path: what a scan for leaked values reads."""
    fs, root = fsspec.core.url_to_fs(url, **options)
    texts = {}
    for path in fs.find(root):
        if path.endswith(".parquet"):
            with fs.open(path, "rb") as handle:
                table = pq.read_table(handle)
            texts[path] = " ".join(str(v) for c in table.columns for v in c.cast(pa.string()).to_pylist())
        else:
            texts[path] = fs.cat_file(path).decode(errors="replace")
    return texts
