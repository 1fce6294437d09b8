"""Secrets never leak: seeded credentials (an S3 secret key, a database password percent-encoded inside
its DSN, the PII key) are searched, in every encoding, in what failing and succeeding runs leave behind —
log records, the CLI's output, and the Dagster instance's runs and event log (metadata included)."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from dagster_project.cli import DEFS_FOLDER, main
from pipelines.demo import write_demo
from tests.conftest import _wait_for_port, free_port, require_checkout_writes
from zones import load_config

S3_SECRET = "Zq9+s3cr3t/KEY%2Fpart=="  # base64-like: '+', '/', '=' and a literal '%2F'
DSN_PASSWORD = "p@ss:w/rd%9 ü#1"  # needs percent-encoding in a URL
PII_KEY = f"pii-key-{uuid.uuid4().hex}"
ZONES = ("landing", "raw", "curated", "pii", "quarantine")


def _forms(secret: str) -> set[str]:
    """The secret as written and in every URL encoding it could travel in."""
    return {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), quote_plus(secret, safe="")}


def _dagster_records() -> str:
    """Every run of the test's Dagster instance (config, tags) and every event it logged (metadata
    included), serialized."""
    parts = []
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            parts.append(serialize_value(run))
            parts.extend(serialize_value(entry) for entry in instance.all_logs(run.run_id))
    assert parts, "no Dagster run was recorded: nothing was scanned"
    return "\n".join(parts)


def _leaks(secrets: list[str], **texts: str) -> list[str]:
    return [
        f"{where} holds {form!r}"
        for where, text in texts.items()
        for secret in secrets
        for form in _forms(secret)
        if form in text
    ]


def _run(pipeline: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["run", pipeline])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture
def s3_zones(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every zone on S3 with the seeded secret key (credentials by environment variable), 2 s of retries."""
    monkeypatch.setenv("LAKEGATE_PII_KEY", PII_KEY)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALAKEGATETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = (
        "{key: {env: AWS_ACCESS_KEY_ID}, secret: {env: AWS_SECRET_ACCESS_KEY}, "
        "endpoint_url: {env: AWS_ENDPOINT_URL_S3}, connect_timeout: 1, timeout: 2, retry_timeout: 2}"
    )
    config = lakegate_home.parent / "lakegate.yaml"
    config.write_text(
        "zones:\n" + "".join(f"  {z}: {{url: 's3://lake-secrets/{z}', storage: {storage}}}\n" for z in ZONES)
    )
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    yield


@pytest.fixture
def moto_with_auth(tmp_path: Path) -> Iterator[str]:
    """A moto server that checks credentials (it knows none: every key is wrong)."""
    import os

    port = free_port()
    with (tmp_path / "moto-auth.log").open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        )
    try:
        _wait_for_port(port, server, seconds=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.s3
@pytest.mark.parametrize("failure", ["bad endpoint", "wrong credentials"])
def test_storage_failures_leak_no_secret(
    failure: str,
    s3_zones: None,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    if failure == "bad endpoint":
        endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    else:
        endpoint = request.getfixturevalue("moto_with_auth")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    outputs = {}
    for pipeline in ("orders", "customers"):
        status, outputs[pipeline] = _run(pipeline, capsys)
        assert status != 0, outputs[pipeline]
        assert "lakegate: " in outputs[pipeline]
    capsys.readouterr()
    try:
        assert main(["table", "raw", "sales/orders"]) != 0
        outputs["table"] = capsys.readouterr().err
    except OSError as exc:  # the store's own error, as the user would see it
        outputs["table"] = str(exc)
    leaks = _leaks([S3_SECRET, PII_KEY], logs=caplog.text, **outputs, dagster=_dagster_records())
    assert not leaks, leaks


SQL_DEFS = """\
type: dagster_project.components.IngestionPipeline
attributes:
  name: {name}
  domain: secrets
  connector:
    type: sql
    config:
      url: {{env: SECRETS_DSN}}
      table: stock
  pattern: EL
"""


@pytest.fixture
def sql_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A sql pipeline (its defs.yaml beside the shipped ones, removed afterwards) whose DSN holds the
    seeded password, percent-encoded, for a server that is not there."""
    require_checkout_writes()
    name = f"zz_secrets_{uuid.uuid4().hex[:8]}"
    dsn = f"postgresql://lakegate:{quote(DSN_PASSWORD, safe='')}@127.0.0.1:{free_port()}/shop"
    monkeypatch.setenv("SECRETS_DSN", dsn)
    folder = DEFS_FOLDER / name
    folder.mkdir()
    (folder / "defs.yaml").write_text(SQL_DEFS.format(name=name))
    try:
        yield name
    finally:
        (folder / "defs.yaml").unlink()
        folder.rmdir()


@pytest.mark.checkout_writes
def test_a_dsn_password_and_the_pii_key_leak_nowhere(
    lakegate_home: Path,
    sql_pipeline: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run whose database is unreachable, and a run that tokenizes PII with the key, on local zones."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LAKEGATE_PII_KEY", PII_KEY)
    write_demo(load_config(), rows=50)
    failed, failed_output = _run(sql_pipeline, capsys)
    assert failed != 0 and "lakegate: " in failed_output, failed_output
    tokenized, tokenized_output = _run("customers", capsys)
    assert tokenized == 0, tokenized_output
    leaks = _leaks(
        [DSN_PASSWORD, PII_KEY],
        logs=caplog.text,
        failed=failed_output,
        tokenized=tokenized_output,
        dagster=_dagster_records(),
    )
    assert not leaks, leaks
