"""A fault-injecting HTTP proxy in front of an S3 server (moto), for the tests marked ``s3`` that check
pipelines survive a flaky object store.

Each request draws from a seeded random stream; with probability ``rate`` it fails in one of four ways:

- ``5xx``: answered ``503 SlowDown`` or ``500 InternalError`` (S3's XML error body) without reaching the
  server;
- ``timeout``: never answered — the proxy holds the connection for ``stall`` seconds, then closes it;
- ``drop``: the connection is closed before the request reaches the server;
- ``lost reply``: the request reaches the server (it takes effect), then the connection is closed before
  the answer — a retried put-if-absent then finds its own object.

Everything else is forwarded unchanged. ``GET /_faults`` returns the counts per kind as JSON (bucket
names cannot start with ``_``); ``PUT /_faults?rate=R`` changes the rate (0: a healthy store).

Runs as its own process (``python -m tests.services.faulty_proxy LISTEN UPSTREAM SEED RATE STALL``):
deltalake holds the GIL while it waits on HTTP, so a proxy thread in the test process would never answer
it. Standard library only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
KINDS = ("5xx", "timeout", "drop", "lost reply")
_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected fault</Message><RequestId>fault</RequestId></Error>"
)


class FaultyProxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 0)
    rate = 0.1
    stall = 5.0
    draw = random.Random(0)
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        if self.path.startswith("/_faults"):
            return self._control()
        body = self._body()
        with self.lock:
            fault = self.draw.choice(KINDS) if self.draw.random() < self.rate else None
            self.counts[fault or "forwarded"] += 1
        if fault == "5xx":
            code, status = self.draw.choice([("SlowDown", 503), ("InternalError", 500)])
            return self._reply(status, _ERROR.format(code=code).encode(), {"Content-Type": "application/xml"})
        if fault == "timeout":
            time.sleep(self.stall)
            return self._close()
        if fault == "drop":
            return self._close()
        status, data, headers = self._upstream(body)
        if fault == "lost reply":
            return self._close()
        self._reply(status, data, headers)

    def _control(self) -> None:
        if self.command == "PUT":
            rate = parse_qs(urlsplit(self.path).query).get("rate", [str(self.rate)])[0]
            type(self).rate = float(rate)
        with self.lock:
            answer = json.dumps({"rate": self.rate, **self.counts}).encode()
        self._reply(200, answer, {"Content-Type": "application/json"})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _upstream(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            if self.command == "HEAD":
                kept["Content-Length"] = response.getheader("Content-Length", "0")
            return response.status, data, kept
        finally:
            conn.close()

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        if self.command != "HEAD":
            headers = {**headers, "Content-Length": str(len(body))}
        for key, value in headers.items():
            if key.lower() not in ("date", "server"):
                self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _close(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)


class Proxy:
    """The proxy process in front of ``upstream``; ``url`` is the endpoint clients use."""

    def __init__(self, upstream: str, log: Path, seed: int, rate: float, stall: float) -> None:
        from tests.conftest import free_port

        self.port, self.upstream, self.log = free_port(), upstream, log
        self.args = [str(seed), str(rate), str(stall)]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from tests.conftest import _wait_for_port

        upstream_port = self.upstream.rsplit(":", 1)[1]
        command = [
            sys.executable,
            "-m",
            "tests.services.faulty_proxy",
            str(self.port),
            upstream_port,
            *self.args,
        ]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2]
            )
        _wait_for_port(self.port, self.process, seconds=30)

    def faults(self, rate: float | None = None) -> dict[str, float]:
        """The counts per fault kind so far; with ``rate``, set the fault rate first."""
        query = "" if rate is None else f"?rate={rate}"
        request = urllib.request.Request(
            f"{self.url}/_faults{query}", method="GET" if rate is None else "PUT"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            counts: dict[str, float] = json.loads(answer.read())
        return counts

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def faulty_s3(s3_server, tmp_path: Path) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    """The session's moto server behind a proxy failing 10% of requests (seed 7). A stall
    lasts 1.2 s: past the 1 s client timeout tests/test_faults.py sets (s3fs, which takes none, sees the
    connection close then); longer stalls only make the suite slower."""
    proxy = Proxy(s3_server.url, tmp_path / "faulty-proxy.log", seed=7, rate=0.1, stall=1.2)
    proxy.start()
    yield proxy
    proxy.stop()


def main() -> None:
    listen, upstream, seed, rate, stall = sys.argv[1:6]
    FaultyProxy.upstream = ("127.0.0.1", int(upstream))
    FaultyProxy.draw = random.Random(int(seed))
    FaultyProxy.rate, FaultyProxy.stall = float(rate), float(stall)
    server = ThreadingHTTPServer(("127.0.0.1", int(listen)), FaultyProxy)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
