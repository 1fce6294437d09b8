"""PII found by content on the zone write path: the adoption fast path scans first, rejects' raw text and
merges are covered, the Delta log's statistics never carry a found value, and the key is required."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

import pipelines
from lakegate import columns as col
from lakegate.errors import LakegateError
from pipelines import PipelineSpec
from zones import LoadTarget, ZoneName, lakegate_destination, load_config, open_zone

HEADER = "id,qty,note\n"
EMAIL = "jane.doe@example.org"
CARD = "4111 1111 1111 1111"


def spec(url: str, **extra: object) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "primary_key": ["id"],
            "columns": {"id": {"type": "int64"}, "qty": {"type": "int32"}, "note": {"type": "string"}},
            **extra,
        }
    )


def csv(path: Path, notes: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{i},{i % 5},{note}\n" for i, note in enumerate(notes)))
    return path.as_uri()


def zone_text(home: Path, zone: str) -> str:
    """Every file of a zone as bytes decoded loosely: Delta logs (statistics) and data files."""
    return " ".join(
        p.read_bytes().decode("latin-1") for p in (home / "zones" / zone).rglob("*") if p.is_file()
    )


def raw() -> pl.DataFrame:
    return open_zone(ZoneName.RAW, load_config()).read("shop", "orders").sort("id")


def test_a_clean_file_is_still_adopted_after_its_scan(lakegate_home: Path) -> None:
    url = csv(lakegate_home / "in" / "a.csv", [f"order {i} shipped v1.2.{i}" for i in range(30)])
    report = pipelines.ingest(spec(url), run_id="run-1")
    assert (report.committed_rows, report.adopted_jobs, dict(report.pii_found)) == (30, 1, {})


def test_a_file_holding_pii_is_rewritten_with_tokens_and_no_value_in_the_delta_log(
    lakegate_home: Path,
) -> None:
    notes = [f"order {i} shipped" for i in range(30)]
    notes[4], notes[9] = f"mail {EMAIL} please", f"paid by {CARD} ok"
    report = pipelines.ingest(spec(csv(lakegate_home / "in" / "a.csv", notes)), run_id="run-1")
    assert (report.committed_rows, report.adopted_jobs) == (30, 0)
    assert dict(report.pii_found) == {"note.email": 1, "note.card": 1}
    rows = raw()
    assert rows["note"][4].startswith("mail tok_") and rows["note"][9].startswith("paid by tok_")
    assert rows["note"][0] == "order 0 shipped"
    for zone in ("raw", "quarantine"):
        text = zone_text(lakegate_home, zone)
        assert EMAIL not in text and CARD not in text
    assert "minValues" in zone_text(lakegate_home, "raw")  # statistics exist, without the values
    vault = open_zone(ZoneName.PII, load_config()).read("shop", "orders")
    assert sorted(vault["value"].to_list()) == sorted([EMAIL, CARD])
    assert set(vault["column"]) == {"note"}


def test_report_mode_adopts_and_counts(lakegate_home: Path) -> None:
    notes = [f"order {i}" for i in range(10)]
    notes[2] = f"write to {EMAIL}"
    report = pipelines.ingest(
        spec(csv(lakegate_home / "in" / "a.csv", notes), pii_detection="report"), run_id="run-1"
    )
    assert (report.adopted_jobs, dict(report.pii_found)) == (1, {"note.email": 1})
    assert raw()["note"][2] == f"write to {EMAIL}"
    assert open_zone(ZoneName.PII, load_config()).delta_table("shop", "orders") is None


def test_off_scans_nothing(lakegate_home: Path) -> None:
    notes = [f"write to {EMAIL}"]
    report = pipelines.ingest(
        spec(csv(lakegate_home / "in" / "a.csv", notes), pii_detection="off"), run_id="run-1"
    )
    assert dict(report.pii_found) == {} and raw()["note"][0] == notes[0]


def test_a_rejected_records_raw_text_is_tokenized_before_quarantine(lakegate_home: Path) -> None:
    path = lakegate_home / "in" / "a.ndjson"
    path.parent.mkdir(parents=True)
    path.write_text('{"id": 1, "qty": 1, "note": "ok"}\n{"id": 2, "note": "' + EMAIL + '",\n')
    report = pipelines.ingest(spec(path.as_uri()), run_id="run-1")
    assert (report.committed_rows, report.quarantined_rows) == (1, 1)
    quarantine = open_zone(ZoneName.QUARANTINE, load_config()).read("shop", "orders")
    assert "tok_" in quarantine[col.RAW_TEXT][0]
    assert EMAIL not in zone_text(lakegate_home, "quarantine")
    assert EMAIL in open_zone(ZoneName.PII, load_config()).read("shop", "orders")["value"].to_list()


def test_elt_curate_merges_tokens_only(lakegate_home: Path) -> None:
    notes = [f"order {i}" for i in range(5)]
    notes[1] = f"mail {EMAIL}"
    elt = spec(csv(lakegate_home / "in" / "a.csv", notes), pattern="ELT")
    pipelines.ingest(elt, run_id="run-1")
    pipelines.curate(elt, run_id="run-1")
    curated = open_zone(ZoneName.CURATED, load_config()).read("shop", "orders").sort("id")
    assert curated["note"][1].startswith("mail tok_") and curated["note"][0] == "order 0"
    assert EMAIL not in zone_text(lakegate_home, "curated")


def test_found_pii_needs_the_key_only_once_found_and_nothing_lands_unprotected(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = os.environ["LAKEGATE_PII_KEY"]
    monkeypatch.delenv("LAKEGATE_PII_KEY")
    clean = csv(lakegate_home / "in" / "clean" / "a.csv", ["order 1", "order 2"])
    assert pipelines.ingest(spec(clean), run_id="run-1").committed_rows == 2, "no PII: no key needed"

    drop = lakegate_home / "in" / "mixed"
    url = csv(drop / "a.csv", ["order 1", f"mail {EMAIL}"])
    with pytest.raises(
        LakegateError, match=r"PII found by content \(note\.email: 1\).*LAKEGATE_PII_KEY is not set"
    ):
        pipelines.ingest(spec(url), run_id="run-2")
    for zone in ("raw", "curated", "quarantine", "pii"):
        assert EMAIL not in zone_text(lakegate_home, zone), f"{zone} holds the value unprotected"

    monkeypatch.setenv("LAKEGATE_PII_KEY", key)
    pipelines.ingest(spec(url), run_id="run-3")
    rows = raw().filter(pl.col(col.SOURCE).str.contains("mixed"))
    assert rows.height == 2 and any(n.startswith("mail tok_") for n in rows["note"].to_list())
    reported = spec("file:///nowhere/*.csv", pii_detection="report").dataset()
    lakegate_destination(LoadTarget(reported, ZoneName.RAW, "t", "r", load_config()))  # never a key


def test_networks_in_cidr_form_are_not_one_hosts_address() -> None:
    from zones.pii_detection import scan

    texts = ["net 203.0.113.0/24 and 2001:db8:1::/48", "host 203.0.113.7/32", "host 2001:db8::7/128"]
    found = [scan(pl.DataFrame({"ip": [t]})) for t in texts]
    assert found == [{}, {("ip", "ipv4"): 1}, {("ip", "ipv6"): 1}]


def test_dictionary_encoded_text_is_scanned_too(lakegate_home: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = lakegate_home / "in" / "a.parquet"
    path.parent.mkdir(parents=True)
    notes = pa.array(["fine", f"to {EMAIL}", "fine"]).dictionary_encode()
    pq.write_table(pa.table({"id": [1, 2, 3], "qty": pa.array([1, 1, 1], pa.int32()), "note": notes}), path)
    report = pipelines.ingest(spec(path.as_uri()), run_id="run-1")
    assert dict(report.pii_found) == {"note.email": 1}
    assert raw()["note"][1].startswith("to tok_") and EMAIL not in zone_text(lakegate_home, "raw")
