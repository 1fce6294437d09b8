"""The XML-API calls the GCS shim translates, spoken the way Rust ``object_store`` speaks them (the paths
deltalake does not exercise in the zone tests: copy, listing after a key, precondition failures)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid

import pytest

from tests.services.gcs import FakeGcs

pytestmark = pytest.mark.gcs


def _call(method: str, url: str, body: bytes = b"", **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def bucket(gcs_server: FakeGcs) -> str:
    name = f"shim-{uuid.uuid4().hex[:8]}"
    gcs_server.create_bucket(name)
    return f"{gcs_server.url}/{name}"


def test_put_if_absent_and_copy_if_not_exists_refuse_a_taken_name(bucket: str) -> None:
    match = {"x-goog-if-generation-match": "0"}
    assert _call("PUT", f"{bucket}/log%2F0.json", b"first", **match)[0] == 200
    assert _call("PUT", f"{bucket}/log%2F0.json", b"second", **match)[0] == 412
    assert _call("GET", f"{bucket}/log%2F0.json") == (200, b"first")
    source = bucket.rsplit("/", 1)[1] + "/log%2F0.json"
    assert _call("PUT", f"{bucket}/log%2F1.json", **{"x-goog-copy-source": source, **match})[0] == 200
    assert _call("PUT", f"{bucket}/log%2F1.json", **{"x-goog-copy-source": source, **match})[0] == 412
    assert _call("GET", f"{bucket}/log%2F1.json") == (200, b"first")
    assert _call("DELETE", f"{bucket}/log%2F1.json")[0] == 204
    assert _call("GET", f"{bucket}/log%2F1.json")[0] == 404


def test_list_applies_start_after_and_delimiter(bucket: str) -> None:
    for name in ("t/_delta_log/0.json", "t/_delta_log/1.json", "t/_delta_log/2.json", "t/p=a/x.parquet"):
        assert _call("PUT", f"{bucket}/{name}", b"x")[0] == 200
    status, xml = _call("GET", f"{bucket}?list-type=2&prefix=t/_delta_log/&start-after=t/_delta_log/0.json")
    assert status == 200
    assert re.findall(rb"<Key>([^<]+)</Key>", xml) == [b"t/_delta_log/1.json", b"t/_delta_log/2.json"]
    status, xml = _call("GET", f"{bucket}?list-type=2&prefix=t/&delimiter=/")
    assert re.findall(rb"<Prefix>([^<]+)</Prefix>", xml)[1:] == [b"t/_delta_log/", b"t/p=a/"]


def test_multipart_parts_are_joined_in_part_order(bucket: str) -> None:
    status, xml = _call("POST", f"{bucket}/big.bin?uploads=")
    upload = re.search(rb"<UploadId>([^<]+)</UploadId>", xml)
    assert status == 200 and upload is not None
    uid = upload[1].decode()
    for number, part in ((2, b"-two"), (1, b"one")):
        assert _call("PUT", f"{bucket}/big.bin?partNumber={number}&uploadId={uid}", part)[0] == 200
    parts = b"".join(b"<Part><PartNumber>%d</PartNumber></Part>" % n for n in (1, 2))
    done = b"<CompleteMultipartUpload>" + parts + b"</CompleteMultipartUpload>"
    status, xml = _call("POST", f"{bucket}/big.bin?uploadId={uid}", done)
    assert status == 200 and b"<ETag>" in xml
    assert _call("GET", f"{bucket}/big.bin") == (200, b"one-two")
