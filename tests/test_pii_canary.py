"""Guarantee 4: plaintext PII exists only in the pii zone (and the vendor's own landing drop).

Seeds canary values, runs the PII pipeline (ETL) and an ELT pipeline declaring PII, then scans every
decoded zone file, the Delta logs, dlt's working folder and the Dagster event log for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project.cli import main
from zones import load_config, open_zone

CANARIES = ["canary.alpha@leak-test.example", "+44 7700 900123", "canary.broken@leak-test.example"]


def customer(customer_id: int, email: str, phone: str, country: str, signed_up_at: str) -> str:
    return json.dumps(
        {
            "customer_id": customer_id,
            "name": "A",
            "email": email,
            "phone": phone,
            "country": country,
            "signed_up_at": signed_up_at,
        }
    )


def seed(home: Path) -> None:
    landing = open_zone("landing", load_config())
    lines = [
        customer(1, CANARIES[0], CANARIES[1], "GB", "2026-11-01T00:00:00Z"),
        customer(2, "b@example.com", "+49 1", "DEU", "not a time"),  # typing fails: quarantined
        customer(
            1, CANARIES[0], CANARIES[1], "GB", "2026-10-01T00:00:00Z"
        ),  # older duplicate: removed in flight
        '{"customer_id": 3, "email": "' + CANARIES[2] + '",',  # unparseable line holding PII
    ]
    with fsspec.open(f"{landing.config.url}/crm/customers/canary.ndjson", "w", auto_mkdir=True) as handle:
        handle.write("\n".join(lines) + "\n")


def decoded_text(path: Path) -> str:
    table = pq.read_table(path)
    return " ".join(str(v) for column in table.columns for v in column.cast(pa.string()).to_pylist())


def test_no_plaintext_pii_outside_the_pii_zone(lakegate_home: Path) -> None:
    seed(lakegate_home)
    assert main(["run", "customers"]) == 0
    zones_root = lakegate_home / "zones"
    scanned = 0
    for zone in ("raw", "curated", "quarantine"):
        for path in (zones_root / zone).rglob("*"):
            if path.suffix == ".parquet":
                text, scanned = decoded_text(path), scanned + 1
            elif path.is_file():
                text = path.read_text(errors="replace")  # Delta logs carry column statistics
            else:
                continue
            for canary in CANARIES:
                assert canary not in text, f"{canary} leaked into {path}"
    assert scanned >= 2
    vault = open_zone("pii", load_config()).read("crm", "customers")["value"].to_list()
    assert CANARIES[0] in vault and CANARIES[1] in vault
    assert any(CANARIES[2] in v for v in vault)  # the unparseable line is vaulted whole
    for path in (lakegate_home / "dlt").rglob("*"):
        if path.is_file() and path.suffix == ".parquet":
            pytest.fail(f"dlt kept a load file with unprotected rows: {path}")
    events = dg.DagsterInstance.get().all_logs(run_id=_only_run_id())
    log_text = "\n".join(dg.serialize_value(e) for e in events)
    assert log_text
    for canary in CANARIES:
        assert canary not in log_text, f"{canary} leaked into the Dagster event log"


def _only_run_id() -> str:
    runs = dg.DagsterInstance.get().get_runs()
    assert len(runs) == 1
    return runs[0].run_id
