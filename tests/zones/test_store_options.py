"""One zone config, two option dialects: what ``lakegate.yaml`` storage settings become per scheme, and
that credentials stay out of the file, the config's repr and the error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zones import ZoneConfigError, load_config, open_zone

SECRET = "pa%2Fss+w0rd/sekret"  # percent-encoded and slash: must not leak in any form


def _config(home: Path, monkeypatch: pytest.MonkeyPatch, raw: str) -> Path:
    file = home.parent / "lakegate.yaml"
    file.write_text(f"zones:\n  raw: {raw}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(file))
    return file


def test_s3_settings_become_both_dialects(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_ID", "AKIA1")
    monkeypatch.setenv("KEY_SECRET", SECRET)
    _config(
        lakegate_home,
        monkeypatch,
        "{url: s3://lake/raw, storage: {key: {env: KEY_ID}, secret: {env: KEY_SECRET}, "
        "endpoint_url: 'http://minio:9000', region: eu-west-1, timeout: 5, retry_timeout: 60}}",
    )
    raw = open_zone("raw", load_config())
    assert raw.delta_options() == {
        "aws_access_key_id": "AKIA1",
        "aws_secret_access_key": SECRET,
        "aws_endpoint_url": "http://minio:9000",
        "aws_region": "eu-west-1",
        "aws_conditional_put": "etag",
        "aws_allow_http": "true",
        "timeout": "5s",
        "retry_timeout": "60s",
    }
    assert raw.fsspec_options() == {
        "key": "AKIA1",
        "secret": SECRET,
        "endpoint_url": "http://minio:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }


def test_a_timeout_that_is_not_seconds_is_named(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(lakegate_home, monkeypatch, "{url: s3://lake/raw, storage: {timeout: 5m}}")
    with pytest.raises(ZoneConfigError, match="s3://lake/raw: storage option 'timeout' is not a number"):
        open_zone("raw", load_config()).delta_options()


def test_gcs_endpoint_and_emulator_key_are_one_and_the_same(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:4443"
    monkeypatch.setenv("GCS_ENDPOINT_URL", url)
    _config(
        lakegate_home, monkeypatch, "{url: gs://lake/raw, storage: {endpoint_url: {env: GCS_ENDPOINT_URL}}}"
    )
    by_endpoint = open_zone("raw", load_config())
    blank = {"client_email": "", "private_key": "", "private_key_id": ""}
    monkeypatch.setenv(
        "GOOGLE_SERVICE_ACCOUNT_KEY", json.dumps({"gcs_base_url": url, "disable_oauth": True, **blank})
    )
    _config(
        lakegate_home,
        monkeypatch,
        "{url: gs://lake/raw, storage: {service_account_key: {env: GOOGLE_SERVICE_ACCOUNT_KEY}}}",
    )
    by_key = open_zone("raw", load_config())
    for zone in (by_endpoint, by_key):
        options = zone.delta_options()
        assert json.loads(options.pop("google_service_account_key")) == {
            "gcs_base_url": url,
            "disable_oauth": True,
            **blank,
        }
        assert options == {"allow_http": "true"}
        assert zone.fsspec_options() == {"token": "anon", "endpoint_url": url}


def test_gcs_service_account_key_is_the_credential_of_both_libraries(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = {
        "type": "service_account",
        "client_email": "lake@p.iam",
        "private_key": SECRET,
        "private_key_id": "1",
    }
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", json.dumps(key))
    _config(
        lakegate_home,
        monkeypatch,
        "{url: gs://lake/raw, storage: {service_account_key: {env: GOOGLE_SERVICE_ACCOUNT_KEY}, project: p}}",
    )
    raw = open_zone("raw", load_config())
    assert json.loads(raw.delta_options()["google_service_account_key"]) == key
    assert raw.fsspec_options() == {"token": key, "project": "p"}


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            "{url: s3://lake/raw, storage: {secret: literal}}",
            "zones.raw: storage.secret: a credential is never written in the file; use {env: VARIABLE}",
        ),
        (
            "{url: s3://lake/raw, storage: {endpoint: x}}",
            "zones.raw: storage.endpoint: unknown setting for s3:// (did you mean 'endpoint_url'?)",
        ),
        (
            "{url: gs://lake/raw, storage: {key: {env: X}}}",
            "zones.raw: storage.key: unknown setting for gs://",
        ),
    ],
)
def test_a_bad_storage_setting_is_one_line_naming_it(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch, storage: str, message: str
) -> None:
    file = _config(lakegate_home, monkeypatch, storage)
    with pytest.raises(ZoneConfigError) as caught:
        load_config()
    assert str(caught.value).startswith(f"{file}: {message}")
    assert "literal" not in str(caught.value)


def test_secrets_stay_out_of_repr_and_errors(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY_SECRET", SECRET)
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", "{not json " + SECRET)
    file = lakegate_home.parent / "lakegate.yaml"
    file.write_text(
        "zones:\n"
        "  raw: {url: s3://lake/raw, storage: {secret: {env: KEY_SECRET}}}\n"
        "  curated: {url: gs://lake/curated,"
        " storage: {service_account_key: {env: GOOGLE_SERVICE_ACCOUNT_KEY}}}\n"
    )
    monkeypatch.setenv("LAKEGATE_CONFIG", str(file))
    config = load_config()
    raw = open_zone("raw", config)
    assert raw.delta_options()["aws_secret_access_key"] == SECRET  # resolved when used...
    shown = [repr(config), str(config), repr(raw), repr(raw.config)]
    assert "KEY_SECRET" in shown[0]  # ...while the config names only the variable
    assert not any(SECRET in text or "pa/ss" in text for text in shown)
    with pytest.raises(ZoneConfigError) as caught:
        open_zone("curated", config).delta_options()
    assert str(caught.value) == "gs://lake/curated: storage option 'service_account_key' is not a JSON object"
