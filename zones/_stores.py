"""Object stores by URL scheme: the storage settings a zone may declare and the options each library needs.

One table, :data:`STORES`, maps a zone's ``storage`` settings (resolved from ``lakegate.yaml``, secrets
from environment variables) to the two option dialects: deltalake/polars (Rust ``object_store`` names)
and fsspec (s3fs, gcsfs). Both come from the same settings so they never drift apart; adding a store
(Azure: ``abfss``) is one more entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lakegate.registry import suggest

Settings = Mapping[str, str]


@dataclass(frozen=True)
class Store:
    """One scheme's settings and how they become options.

    Attributes:
        settings: The ``storage`` keys a zone on this scheme may declare.
        secrets: Those that are credentials: only ever ``{env: VARIABLE}``, never a literal in the file.
        delta: Settings → deltalake/polars ``storage_options``.
        fsspec: Settings → fsspec filesystem options.
    """

    settings: frozenset[str]
    secrets: frozenset[str]
    delta: Callable[[Settings], dict[str, str]]
    fsspec: Callable[[Settings], dict[str, Any]]


def _none(_: Settings) -> dict[str, Any]:
    return {}


def _http(settings: Settings, endpoint: str | None) -> bool:
    return settings.get("allow_http", "").lower() == "true" or (endpoint or "").startswith("http://")


# How long a request may take and for how long a failing one is retried (object_store retries 5xx, 429,
# timeouts and dropped connections up to 10 times with exponential backoff by default), in seconds.
_CLIENT = frozenset({"timeout", "connect_timeout", "retry_timeout"})


def _seconds(s: Settings, name: str) -> float | None:
    if not s.get(name):
        return None
    try:
        value = float(s[name])
    except ValueError:
        raise ValueError(f"storage option '{name}' is not a number of seconds: '{s[name]}'") from None
    if value <= 0:
        raise ValueError(f"storage option '{name}' must be above 0 seconds")
    return value


def _client_delta(s: Settings) -> dict[str, str]:
    """The declared timeouts as object_store client/retry options (``"30s"``). ``max_retries`` is left at
    object_store's default of 10: deltalake wants it as text and polars as a number, in one dict."""
    return {name: f"{value:g}s" for name in sorted(_CLIENT) if (value := _seconds(s, name)) is not None}


def _s3_delta(s: Settings) -> dict[str, str]:
    options = {
        "aws_access_key_id": s.get("key"),
        "aws_secret_access_key": s.get("secret"),
        "aws_session_token": s.get("session_token"),
        "aws_endpoint_url": s.get("endpoint_url"),
        "aws_region": s.get("region") or "us-east-1",
        # A Delta commit is a put-if-absent (If-None-Match: *), so two writers racing for one version
        # never both win and the loser retries at the next one: concurrent writers are safe without a
        # lock provider or unsafe renames (AWS S3 since 2024, MinIO, moto).
        "aws_conditional_put": "etag",
        "aws_allow_http": "true" if _http(s, s.get("endpoint_url")) else None,
        **_client_delta(s),
    }
    return {k: v for k, v in options.items() if v}


def _s3_fsspec(s: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "key": s.get("key"),
        "secret": s.get("secret"),
        "token": s.get("session_token"),
        "endpoint_url": s.get("endpoint_url"),
        # Only when declared: s3fs with a forced region cannot create a bucket elsewhere (moto, MinIO).
        "client_kwargs": {"region_name": s["region"]} if s.get("region") else None,
        # No retry options: botocore (5 attempts with backoff on 5xx, throttling, timeouts and dropped
        # connections) and s3fs (5 more around each call) retry by default.
    }
    return {k: v for k, v in options.items() if v}


def _gcs_key(s: Settings) -> dict[str, Any] | None:
    """The service-account key as a dict (``None``: none declared); ``endpoint_url`` points it at an
    emulator or private endpoint (object_store reads the base URL from the key, ``gcs_base_url``)."""
    key: dict[str, Any] | None = None
    if s.get("service_account_key"):
        try:
            key = dict(json.loads(s["service_account_key"]))
        except (ValueError, TypeError):
            # Never echo the value: it is a credential.
            raise ValueError("storage option 'service_account_key' is not a JSON object") from None
    if s.get("endpoint_url"):
        # No key with an endpoint: an emulator without OAuth (object_store needs the fields present).
        blank = {"disable_oauth": True, "client_email": "", "private_key": "", "private_key_id": ""}
        key = {**(key if key is not None else blank), "gcs_base_url": s["endpoint_url"]}
    return key


def _gcs_delta(s: Settings) -> dict[str, str]:
    key = _gcs_key(s)
    endpoint = key.get("gcs_base_url") if key else None
    options = {
        "google_service_account_key": json.dumps(key) if key else None,
        "google_service_account": s.get("service_account"),
        "allow_http": "true" if _http(s, endpoint) else None,
        **_client_delta(s),
    }
    return {k: v for k, v in options.items() if v}


def _gcs_fsspec(s: Settings) -> dict[str, Any]:
    key = _gcs_key(s)
    token: Any = s.get("service_account")  # a key file path
    if key is not None:
        token = "anon" if key.get("disable_oauth") else {k: v for k, v in key.items() if k != "gcs_base_url"}
    options = {
        "token": token,
        "endpoint_url": key.get("gcs_base_url") if key else None,
        "project": s.get("project"),
    }
    return {k: v for k, v in options.items() if v}


_LOCAL = Store(frozenset(), frozenset(), _none, _none)
_GCS = Store(
    frozenset({"service_account_key", "service_account", "endpoint_url", "project", "allow_http"}) | _CLIENT,
    frozenset({"service_account_key"}),
    _gcs_delta,
    _gcs_fsspec,
)

STORES: dict[str, Store] = {
    "file": _LOCAL,
    "memory": _LOCAL,
    "s3": Store(
        frozenset({"key", "secret", "session_token", "endpoint_url", "region", "allow_http"}) | _CLIENT,
        frozenset({"secret", "session_token"}),
        _s3_delta,
        _s3_fsspec,
    ),
    "gs": _GCS,
    "gcs": _GCS,
}


def check_settings(scheme: str, declared: Mapping[str, object], is_env: Callable[[object], bool]) -> None:
    """Refuse a setting the scheme does not know, and a credential written as a literal.

    Raises:
        ValueError: naming the setting and the fix.
    """
    store = STORES[scheme]
    if not store.settings:
        return  # a local zone has nothing to reach it with (e.g. a cloud zone overridden to file:// by env)
    for name, value in declared.items():
        if name not in store.settings:
            known = ", ".join(sorted(store.settings)) or "none"
            hint = suggest(name, sorted(store.settings))
            raise ValueError(f"storage.{name}: unknown setting for {scheme}://{hint}; known: {known}")
        if name in store.secrets and not is_env(value):
            raise ValueError(
                f"storage.{name}: a credential is never written in the file; use {{env: VARIABLE}}"
            )
