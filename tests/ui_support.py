"""Helpers for the UI tests: run ``dagster dev``, talk GraphQL to it, take headless Chromium screenshots.

Not a test module (pytest collects ``test_*.py`` only). Traps handled here, see /work/shared/SERVICES.md:
``dagster dev`` started from a script ignores SIGTERM unless started through ``env --default-signal``,
``/server_info`` answers before the code location is loaded, and a welcome popup covers the graph until
``setNuxSeen`` is sent.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = REPO_ROOT / "dagster_project" / "workspace.yaml"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
]
_WORKSPACE = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"""


class DagsterDevError(RuntimeError):
    """``dagster dev`` did not come up; the message carries the tail of its log."""


def in_ci() -> bool:
    """True under CI, where a missing service must fail the suite instead of skipping."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def graphql(base_url: str, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """POST one GraphQL request; returns ``data`` and raises ``AssertionError`` on GraphQL errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors: {json.dumps(payload['errors'], indent=2)[:4000]}")
    return payload["data"]


@dataclass
class DagsterDev:
    """A running ``dagster dev`` subprocess (its own process group) and where it logs."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        return graphql(self.url, query, variables)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL the whole process group after ``grace`` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        with contextlib.suppress(ProcessLookupError):  # children that outlived their parent
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)


def start_dagster_dev(env: dict[str, str], log_path: Path, timeout: float = 90) -> DagsterDev:
    """Start ``dagster dev`` on a free port; return once the webserver answers and every location loaded.

    Raises:
        DagsterDevError: on timeout, early exit or a code location that failed to load (with the log's tail).
    """
    port = free_port()
    command = ["env", "--default-signal=INT,TERM", str(VENV_BIN / "dagster"), "dev"]
    command += ["-w", str(WORKSPACE), "-h", "127.0.0.1", "-p", str(port)]
    env = {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    dev = DagsterDev(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(dev, time.monotonic() + timeout)
    except BaseException:
        dev.stop()
        raise
    return dev


def _wait_ready(dev: DagsterDev, deadline: float) -> None:
    problem = "no answer yet"
    while time.monotonic() < deadline:
        if dev.process.poll() is not None:
            raise DagsterDevError(
                f"dagster dev exited with {dev.process.returncode}:\n{log_tail(dev.log_path)}"
            )
        try:
            with urllib.request.urlopen(f"{dev.url}/server_info", timeout=5):
                pass
            problem = _location_problem(dev.graphql(_WORKSPACE)["workspaceOrError"])
        except (OSError, ValueError, AssertionError) as exc:  # not listening yet, or half started
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if problem is None:
                return
            if problem.startswith("code location"):
                raise DagsterDevError(f"{problem}\n{log_tail(dev.log_path)}")
        time.sleep(0.5)
    raise DagsterDevError(f"dagster dev not ready in time ({problem}):\n{log_tail(dev.log_path)}")


def _location_problem(workspace: dict[str, Any]) -> str | None:
    """None once every code location is loaded; a reason otherwise (``code location ...`` if broken)."""
    if workspace["__typename"] != "Workspace":
        return f"workspace: {workspace.get('message')}"
    entries = workspace["locationEntries"]
    for entry in entries:
        loaded = entry["locationOrLoadError"]
        if loaded and loaded["__typename"] == "PythonError":
            stack = "".join(loaded["stack"])
            return f"code location {entry['name']} failed to load: {loaded['message']}\n{stack}"
        if entry["loadStatus"] != "LOADED":
            return f"location {entry['name']} is {entry['loadStatus']}"
    return None if entries else "no code location yet"


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(chromium: str, url: str, out: Path, size: tuple[int, int] = (1400, 900)) -> str:
    """Save a PNG of ``url`` after the page settled; returns the rendered DOM (to assert on its text)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        done = subprocess.run(
            [chromium, *flags, "--dump-dom", f"--screenshot={out}", url],
            capture_output=True,
            timeout=90,
            check=False,
        )
    if done.returncode != 0 or not out.exists():
        raise AssertionError(f"chromium failed ({done.returncode}) on {url}:\n{done.stderr.decode()[-3000:]}")
    return done.stdout.decode(errors="replace")


def page_text(dom: str) -> str:
    """The visible-ish text of a dumped DOM: tags and scripts dropped, entities decoded."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


@dataclass(frozen=True)
class PngStats:
    """What tells a real screenshot from a blank one, without Pillow."""

    size_bytes: int
    width: int
    height: int
    distinct_bytes: int  # byte values in the decompressed (filtered) image data: ~2 for a flat image


def png_stats(path: Path) -> PngStats:
    """Parse the PNG header and image data of ``path``."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return PngStats(len(data), width, height, len(set(zlib.decompress(bytes(idat)))))


def distinct_colors(path: Path) -> int | None:
    """Number of distinct colors (capped at 65536) if Pillow is installed, else None."""
    try:
        from PIL import Image
    except ImportError:
        return None
    with Image.open(path) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
    return 1 << 16 if colors is None else len(colors)
