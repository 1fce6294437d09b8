"""An XML-API front for fake-gcs-server, so deltalake (Rust ``object_store``) can write to it.

``object_store`` speaks only GCS's XML API; the stock fake-gcs-server answers its reads but not a plain
``PUT``, copy, multipart upload or ``start-after`` listing (see ``../shared/SERVICES.md``). This shim
translates exactly those calls to the JSON API and forwards everything else (gcsfs's JSON calls, XML
``GET``/``HEAD``) unchanged:

- ``PUT /B/O`` → media upload; ``x-goog-if-generation-match`` is checked here (the emulator ignores
  ``ifGenerationMatch`` on media uploads), under one lock, 412 when it does not hold: a Delta commit is
  put-if-absent, and two writers racing for one version must not both win;
- ``PUT /B/O`` with ``x-goog-copy-source`` → download the source, upload it under the precondition;
- ``POST ?uploads`` / ``PUT ?partNumber&uploadId`` / ``POST ?uploadId`` / ``DELETE ?uploadId`` → parts
  held here, uploaded once on completion;
- ``DELETE /B/O`` → JSON delete;
- ``GET /B?list-type=2`` → JSON list (every page) with ``start-after`` applied, as ``ListBucketResult``.

It runs as its own process (``python -m tests.services._gcs_shim LISTEN_PORT UPSTREAM_PORT``): deltalake
holds the GIL while it waits on HTTP, so a shim thread in the test process would never answer it.
Standard library only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class Shim(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    uploads: dict[str, dict[int, bytes]] = {}
    lock = threading.Lock()
    preconditions = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: requests are not logged (the emulator's own log is in the fixture's log file)

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        bucket, name, query = self._target()
        if bucket and not name and query.get("list-type") == ["2"]:
            return self._list(bucket, query)
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        bucket, name, query = self._target()
        if not (bucket and name) or self._json_api():
            return self._forward()
        body = self._body()
        if "uploadId" in query:
            part = int(query["partNumber"][0])
            with self.lock:
                self.uploads[query["uploadId"][0]][part] = body
            return self._reply(200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        source = self.headers.get("x-goog-copy-source")
        if source is not None:
            src_bucket, _, src_name = unquote(source).lstrip("/").partition("/")
            status, data, _ = self._upstream(
                "GET", f"/download/storage/v1/b/{src_bucket}/o/{quote(src_name, safe='')}?alt=media"
            )
            if status != 200:
                return self._reply(status, data)
            body = data
        self._upload(bucket, name, body, self.headers.get("x-goog-if-generation-match"), xml=False)

    def do_POST(self) -> None:
        bucket, name, query = self._target()
        if not (bucket and name) or self._json_api():
            return self._forward()
        if "uploads" in query:
            self._body()
            upload_id = uuid.uuid4().hex
            with self.lock:
                self.uploads[upload_id] = {}
            xml = (
                f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket><Key>{escape(name)}</Key><UploadId>{upload_id}</UploadId>"
                "</InitiateMultipartUploadResult>"
            )
            return self._reply(200, xml.encode(), {"Content-Type": "application/xml"})
        if "uploadId" in query:
            listed = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", self._body())]
            with self.lock:
                parts = self.uploads.pop(query["uploadId"][0], None)
            if parts is None:
                return self._reply(404, b"no such upload")
            body = b"".join(parts[n] for n in (listed or sorted(parts)))
            return self._upload(bucket, name, body, None, xml=True)
        self._forward()

    def do_DELETE(self) -> None:
        bucket, name, query = self._target()
        if not (bucket and name) or self._json_api():
            return self._forward()
        self._body()
        if "uploadId" in query:
            with self.lock:
                self.uploads.pop(query["uploadId"][0], None)
            return self._reply(204)
        status, data, _ = self._upstream("DELETE", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}")
        self._reply(204 if status in (200, 204) else status, b"" if status in (200, 204) else data)

    # ------------------------------------------------------------------ translations
    def _upload(self, bucket: str, name: str, body: bytes, generation: str | None, *, xml: bool) -> None:
        path = f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}"
        if generation is None:
            status, data, _ = self._upstream("POST", path, body, {"Content-Type": "application/octet-stream"})
        else:
            # The emulator ignores ifGenerationMatch on media uploads: check it here, under one lock for
            # every conditional write, so two writers racing for one Delta version cannot both win.
            with self.preconditions:
                status, data, _ = self._upstream("GET", f"/storage/v1/b/{bucket}/o/{quote(name, safe='')}")
                current = str(json.loads(data)["generation"]) if status == 200 else "0"
                if status not in (200, 404):
                    return self._reply(status, data)
                if current != generation:
                    return self._reply(412, b"precondition failed: x-goog-if-generation-match")
                status, data, _ = self._upstream(
                    "POST", path, body, {"Content-Type": "application/octet-stream"}
                )
        if status != 200:
            return self._reply(status, data)
        meta = json.loads(data)
        headers = {"ETag": f'"{meta["etag"]}"', "x-goog-generation": str(meta["generation"])}
        if not xml:
            return self._reply(200, headers=headers)
        done = f'<CompleteMultipartUploadResult><ETag>"{meta["etag"]}"</ETag></CompleteMultipartUploadResult>'
        self._reply(200, done.encode(), {**headers, "Content-Type": "application/xml"})

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        params = {k: query[k][0] for k in ("prefix", "delimiter") if k in query}
        after = query.get("start-after", [""])[0]
        items: list[dict[str, str]] = []
        prefixes: list[str] = []
        token = ""
        while True:
            page = "&".join(
                f"{k}={quote(v, safe='')}" for k, v in {**params, "pageToken": token}.items() if v
            )
            status, data, _ = self._upstream("GET", f"/storage/v1/b/{bucket}/o?{page}")
            if status != 200:
                return self._reply(status, data)
            listed = json.loads(data)
            items += listed.get("items", [])
            prefixes += listed.get("prefixes", [])
            token = listed.get("nextPageToken", "")
            if not token:
                break
        contents = "".join(
            f"<Contents><Key>{escape(o['name'])}</Key><Size>{o['size']}</Size>"
            f'<LastModified>{o["updated"]}</LastModified><ETag>"{o["etag"]}"</ETag></Contents>'
            for o in sorted(items, key=lambda o: o["name"])
            if o["name"] > after
        )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
            for p in sorted(set(prefixes))
            if p > after
        )
        xml = (
            f"<ListBucketResult><Name>{escape(bucket)}</Name>"
            f"<Prefix>{escape(params.get('prefix', ''))}</Prefix>"
            f"<KeyCount>{contents.count('<Contents>')}</KeyCount><IsTruncated>false</IsTruncated>"
            f"{contents}{common}</ListBucketResult>"
        )
        self._reply(200, xml.encode(), {"Content-Type": "application/xml"})

    # ------------------------------------------------------------------ plumbing
    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        """``(bucket, object name, query)`` of an XML-API path ``/BUCKET/OBJECT``."""
        split = urlsplit(self.path)
        bucket, _, name = split.path.lstrip("/").partition("/")
        return unquote(bucket), unquote(name), parse_qs(split.query, keep_blank_values=True)

    def _json_api(self) -> bool:
        return self.path.startswith(("/storage/v1/", "/upload/", "/download/", "/batch/"))

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _upstream(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            sent = {k: v for k, v in (headers or {}).items() if k.lower() != "host"}
            # The emulator serves XML-style paths only for its public host: the shim's own address.
            conn.request(method, path, body=body, headers={"Host": self.headers.get("Host", ""), **sent})
            response = conn.getresponse()
            return response.status, response.read(), response.getheaders()
        finally:
            conn.close()

    def _forward(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers.pop("Content-Length", None)
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        status, data, answer = self._upstream(self.command, self.path, body, headers)
        kept = {k: v for k, v in answer if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"}
        if self.command == "HEAD":
            length = next((v for k, v in answer if k.lower() == "content-length"), "0")
            return self._reply(status, b"", {**kept, "Content-Length": length}, head=True)
        self._reply(status, data, kept)

    def _reply(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, head: bool = False
    ) -> None:
        self.send_response(status)
        headers = {k: v for k, v in (headers or {}).items() if k.lower() not in ("date", "server")}
        if not head:
            headers["Content-Length"] = str(len(body))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)


def main() -> None:
    listen, upstream = int(sys.argv[1]), int(sys.argv[2])
    Shim.upstream = ("127.0.0.1", upstream)
    server = ThreadingHTTPServer(("127.0.0.1", listen), Shim)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
