"""One run per pipeline across machines: two instances (own DAGSTER_HOME, own dlt working folder) share
the zones, on local disk and on S3 (moto). The guard is the pipeline's lease in its zone
(``zones._lease``); a holder killed with SIGKILL stops blocking once its lease expires."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pytest
import s3fs

from lakegate.columns import POSITION, SOURCE
from pipelines.demo import DemoManifest, write_demo
from zones import PipelineBusyError, load_config, open_zone, pipeline_lock
from zones._lease import ZoneLease

LAKEGATE = str(Path(sys.executable).with_name("lakegate"))
ZONES = ("landing", "raw", "curated", "pii", "quarantine")
INGEST = "lakegate_sales_orders_ingest"  # the dlt pipeline (and lease) name of the orders ingest step


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def shared_zones(
    request: pytest.FixtureRequest, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A ``lakegate.yaml`` naming every zone explicitly (local folder or a fresh bucket), so instances
    with different ``LAKEGATE_HOME`` (dlt folders) share the zones; returns the instances' parent."""
    root = lakegate_home.parent
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        bucket = f"lake-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=server.url).mkdir(bucket)
        base = f"s3://{bucket}"
        storage = (
            ", storage: {key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
            "endpoint_url: {env: AWS_ENDPOINT_URL_S3}}"
        )
    else:
        base, storage = f"file://{root}/shared", ""
    config = root / "lakegate.yaml"
    config.write_text("zones:\n" + "".join(f"  {z}: {{url: '{base}/{z}'{storage}}}\n" for z in ZONES))
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    return root


def _instance(root: Path, name: str) -> dict[str, str]:
    """The environment of one instance: its own dlt working folders and Dagster instance."""
    return {
        **os.environ,
        "LAKEGATE_HOME": str(root / name / "home"),
        "DAGSTER_HOME": str(root / name / "dagster"),
    }


def _exact(manifest: DemoManifest) -> None:
    """The zones hold the orders drops exactly once."""
    config = load_config()
    raw = open_zone("raw", config).read("sales", "orders")
    doubled = raw.filter(pl.struct(SOURCE, POSITION).is_duplicated())
    assert not doubled.height, f"raw holds rows twice: {doubled.head(3)}"
    curated = open_zone("curated", config).read("sales", "orders")
    quarantined = open_zone("quarantine", config).read("sales", "orders")
    assert curated.height == manifest.distinct_keys["sales/orders"]
    assert curated.height + quarantined.height == manifest.input_rows["sales/orders"]


def test_two_instances_started_at_once_run_the_pipeline_once(shared_zones: Path) -> None:
    manifest = write_demo(load_config(), rows=50_000)
    runs = [
        subprocess.Popen(
            [LAKEGATE, "run", "orders"],
            env=_instance(shared_zones, name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outcomes = [(run.wait(timeout=300), run.communicate()[1]) for run in runs]
    assert any(status == 0 for status, _ in outcomes), outcomes
    for status, err in outcomes:
        if status:  # the loser: one line naming the lease, no traceback
            assert "Traceback" not in err, err
            assert f"pipeline '{INGEST}' is already running (lease in zone raw held by " in err, err
    _exact(manifest)


def test_a_run_meeting_a_live_lease_fails_at_once_and_commits_nothing(
    shared_zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another machine's run holds the lease: this instance's run fails with one line, changes no
    zone, and runs once the lease is released."""
    from dagster_project.cli import main

    manifest = write_demo(load_config(), rows=300)
    raw = open_zone("raw", load_config())
    lease = ZoneLease(raw.config.url, raw.fsspec_options(), INGEST)
    lease.acquire()
    try:
        capsys.readouterr()
        assert main(["run", "orders"]) != 0
        err = capsys.readouterr().err
        assert f"pipeline '{INGEST}' is already running (lease in zone raw held by {lease.owner}" in err
        assert "Traceback" not in err
        assert raw.delta_table("sales", "orders") is None
    finally:
        lease.release()
    assert main(["run", "orders"]) == 0
    _exact(manifest)


_ELSEWHERE = """
import socket
socket.gethostname = lambda: "another-machine"  # the holder runs on another host: no pid check there
"""
_HOLDER = """
import sys, time
from pathlib import Path
from zones import load_config, open_zone, pipeline_lock
with pipeline_lock(sys.argv[1], Path(sys.argv[2]), open_zone("raw", load_config())):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_holder_killed_with_sigkill_blocks_for_at_most_the_ttl(
    shared_zones: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder renews its lease while alive (a run meeting it after more than one TTL still fails);
    killed, its lease blocks the next run until it expires, then the next run takes it over."""
    ttl = 4.0
    env = {**_instance(shared_zones, "holder"), "LAKEGATE_LEASE_SECONDS": str(ttl)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _ELSEWHERE + _HOLDER, INGEST, str(shared_zones / "holder-dlt")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    raw = open_zone("raw", load_config())
    mine = shared_zones / "mine-dlt"
    time.sleep(ttl * 1.5)  # past one TTL: only the heartbeat keeps it
    with pytest.raises(PipelineBusyError, match="held by another-machine:"), pipeline_lock(INGEST, mine, raw):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    killed = time.monotonic()
    with pytest.raises(PipelineBusyError, match="already running"), pipeline_lock(INGEST, mine, raw):
        pass  # the lease is still live right after the kill
    while True:
        try:
            with pipeline_lock(INGEST, mine, raw):
                break
        except PipelineBusyError:
            assert time.monotonic() - killed < ttl + 2, "the killed holder's lease outlived its TTL"
            time.sleep(0.25)
    # It waited for the expiry: the last renewal was at most a third of the TTL before the kill.
    assert time.monotonic() - killed >= ttl / 2
    with pipeline_lock(INGEST, mine, raw):
        pass  # released: the next run takes it at once


def test_a_killed_holder_on_this_host_blocks_nothing(shared_zones: Path) -> None:
    """On the same host the holder's process is known to be gone: its lease is taken over at once."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, INGEST, str(shared_zones / "holder-dlt")],
        env=_instance(shared_zones, "holder"),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    raw = open_zone("raw", load_config())
    with pytest.raises(PipelineBusyError), pipeline_lock(INGEST, shared_zones / "mine-dlt", raw):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with pipeline_lock(INGEST, shared_zones / "mine-dlt", raw):
        pass
