"""PII operators for declared columns: hash, redact, generalize, encrypt (beside tokenize and mask)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import dlt
import polars as pl
import pyarrow as pa
import pytest

from pipelines.spec import PipelineSpec, check_spec
from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_destination, load_config, open_zone
from zones.pii import (
    ENCRYPTION_KEY_ENV,
    PII_KEY_ENV,
    REDACTED,
    Encryptor,
    PiiKeyError,
    PiiMethod,
    Tokenizer,
    split_pii,
)

TOKENIZER = Tokenizer(b"token-key-0123456789")
ENCRYPTION_KEY = "encryption-key-0123456789"


def test_hash_is_keyed_stable_and_never_a_token_nor_vaulted() -> None:
    frame = pl.DataFrame({"email": ["a@x.io", "b@x.io", "a@x.io", None]})
    out, vault = split_pii(frame, {"email": PiiMethod.HASH}, TOKENIZER)
    hashes = out["email"].to_list()
    assert hashes[0] == hashes[2] != hashes[1] and hashes[3] is None
    assert all(h.startswith("hsh_") and len(h) == 36 for h in hashes[:3])
    assert vault.is_empty()
    token = TOKENIZER.token_map(pl.Series(["a@x.io"]))["token"][0]
    assert hashes[0][4:] != token[4:]  # a key derived under its own label: not the vault's token
    other_key, _ = split_pii(frame, {"email": PiiMethod.HASH}, Tokenizer(b"another-token-key-0123"))
    assert other_key["email"][0] != hashes[0]


def test_redact_writes_the_marker_and_keeps_nulls() -> None:
    out, vault = split_pii(pl.DataFrame({"name": ["Jane", None]}), {"name": PiiMethod.REDACT}, TOKENIZER)
    assert out["name"].to_list() == [REDACTED, None] and vault.is_empty()


def test_generalize_typed_columns_keeps_their_type() -> None:
    frame = pl.DataFrame(
        {
            "born": [date(1984, 7, 23), None],
            "seen": [datetime(2026, 11, 30, 13, 5, 1), datetime(2026, 2, 1)],
            "age": [37, 7],
            "salary": [52_340.5, -37.0],
        }
    ).with_columns(pl.col("seen").dt.replace_time_zone("UTC"))
    out, vault = split_pii(frame, dict.fromkeys(frame.columns, PiiMethod.GENERALIZE), TOKENIZER)
    assert out.schema == frame.schema and vault.is_empty()
    assert out["born"].to_list() == [date(1984, 7, 1), None]
    assert [d.replace(tzinfo=None) for d in out["seen"].to_list()] == [
        datetime(2026, 11, 1),
        datetime(2026, 2, 1),
    ]
    assert out["age"].to_list() == [30, 0]
    assert out["salary"].to_list() == [50_000.0, -40.0]


def test_generalize_text_as_received_ips_dates_numbers_and_nothing_else() -> None:
    received = [
        "192.168.1.20",
        "2001:db8:1234:5678::1",
        "1984-07-23",
        "2026-11-30T13:05:01Z",
        "2026-11-30 13:05:01+02:00",
        "37",
        "1299.50",
        "Jane Doe",
        None,
    ]
    out, _ = split_pii(pl.DataFrame({"v": received}), {"v": PiiMethod.GENERALIZE}, TOKENIZER)
    assert out["v"].to_list() == [
        "192.168.1.0/24",
        "2001:db8:1234::/48",
        "1984-07-01",
        "2026-11-01T00:00:00Z",
        "2026-11-01 00:00:00+02:00",
        "30",
        "1000.0",
        REDACTED,  # fail closed: text it cannot coarsen does not pass through
        None,
    ]


def test_encrypt_is_deterministic_reversible_and_not_vaulted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, ENCRYPTION_KEY)
    frame = pl.DataFrame(
        {"iban": ["DE89370400440532013000", "GB82WEST12345698765432", "DE89370400440532013000"]}
    )
    out, vault = split_pii(frame, {"iban": PiiMethod.ENCRYPT}, TOKENIZER)
    values = out["iban"].to_list()
    assert values[0] == values[2] != values[1] and all(v.startswith("enc_") for v in values)
    assert "DE89" not in "".join(values) and vault.is_empty()
    encryptor = Encryptor.from_key(None, "test")
    assert [encryptor.decrypt(v) for v in values] == frame["iban"].to_list()
    with pytest.raises(PiiKeyError, match="not a ciphertext"):
        Encryptor.from_key("a-different-key-0123456789", "test").decrypt(values[0])


def test_encrypt_without_its_key_or_with_the_token_key_fails_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = pl.DataFrame({"iban": ["DE89370400440532013000"]})
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    with pytest.raises(PiiKeyError, match=f"{ENCRYPTION_KEY_ENV} is not set.*columns iban"):
        split_pii(frame, {"iban": PiiMethod.ENCRYPT}, TOKENIZER)
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, "short")
    with pytest.raises(PiiKeyError, match="shorter than 16") as short:
        split_pii(frame, {"iban": PiiMethod.ENCRYPT}, TOKENIZER)
    assert "short" not in str(short.value).replace("shorter", "")
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, TOKENIZER.key.decode())
    with pytest.raises(PiiKeyError, match=f"equals {PII_KEY_ENV}") as reused:
        split_pii(frame, {"iban": PiiMethod.ENCRYPT}, TOKENIZER)
    assert TOKENIZER.key.decode() not in str(reused.value)
    assert "***" in repr(Encryptor.from_key(ENCRYPTION_KEY, "t")) and ENCRYPTION_KEY not in repr(
        Encryptor.from_key(ENCRYPTION_KEY, "t")
    )


def test_only_tokenize_and_mask_reach_the_vault() -> None:
    frame = pl.DataFrame({c: ["v@x.io"] for c in ("t", "m", "h", "r", "g")})
    pii = {
        "t": PiiMethod.TOKENIZE,
        "m": PiiMethod.MASK,
        "h": PiiMethod.HASH,
        "r": PiiMethod.REDACT,
        "g": PiiMethod.GENERALIZE,
    }
    _, vault = split_pii(frame, pii, TOKENIZER)
    assert sorted(vault["column"].to_list()) == ["m", "t"]


def _spec(columns: dict[str, str], pii: dict[str, str]) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "people",
            "domain": "crm",
            "connector": {"type": "files", "config": {"url": "lakegate://landing/crm/people/*.csv"}},
            "pattern": "EL",
            "columns": {name: {"type": t} for name, t in columns.items()},
            "pii": pii,
        }
    )


def test_spec_accepts_each_operator_on_a_compatible_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, ENCRYPTION_KEY)
    spec = _spec(
        {"ip": "string", "born": "date", "seen": "datetime", "pay": "decimal(12,2)", "email": "string"},
        {
            "ip": "generalize",
            "born": "generalize",
            "seen": "generalize",
            "pay": "generalize",
            "email": "encrypt",
        },
    )
    assert check_spec(spec) == []


def test_spec_refuses_an_operator_on_an_incompatible_type_in_one_line() -> None:
    spec = _spec({"vip": "bool", "age": "int64"}, {"vip": "generalize", "age": "hash"})
    assert check_spec(spec) == [
        "pii.vip: generalize keeps IP addresses (string), dates, datetimes and numbers, not bool; "
        "use redact or hash",
        "pii.age: hash writes text but age is declared int64; declare it string or use generalize",
    ]


def test_operators_through_the_write_path_leave_no_plaintext(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, ENCRYPTION_KEY)
    spec = DatasetSpec(
        domain="crm",
        name="people",
        schema={
            "id": "int64",
            "email": "string",
            "ip": "string",
            "born": "date",
            "pay": "float64",
            "iban": "string",
        },
        pii={
            "email": PiiMethod.HASH,
            "ip": PiiMethod.GENERALIZE,
            "born": PiiMethod.GENERALIZE,
            "pay": PiiMethod.GENERALIZE,
            "iban": PiiMethod.ENCRYPT,
        },
    )
    received = {  # as a CSV delivers them: text, typed by the write path after the PII split
        "id": ["1", "2"],
        "email": ["jane@x.io", "bob@x.io"],
        "ip": ["203.0.113.7", "2001:db8:1234:5678::1"],
        "born": ["1984-07-23", "1990-01-02"],
        "pay": ["52340.5", "812"],
        "iban": ["DE89370400440532013000", "GB82WEST12345698765432"],
    }
    target = LoadTarget(dataset=spec, zone=ZoneName.RAW, pipeline="p", run_id="r", config=load_config())
    report = LoadReport()
    pipeline = dlt.pipeline(
        pipeline_name="people",
        pipelines_dir=str(lakegate_home / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name="crm",
    )

    @dlt.resource(name="people")
    def people() -> pa.Table:
        yield pa.table(received)

    pipeline.run(people())
    assert (report.committed_rows, report.quarantined_rows) == (2, 0)
    raw = open_zone("raw", load_config()).read("crm", "people").sort("id")
    assert raw["ip"].to_list() == ["203.0.113.0/24", "2001:db8:1234::/48"]
    assert raw["born"].to_list() == [date(1984, 7, 1), date(1990, 1, 1)]
    assert raw["pay"].to_list() == [50_000.0, 800.0]
    assert all(h.startswith("hsh_") for h in raw["email"].to_list())
    assert Encryptor.from_key(None, "t").decrypt(raw["iban"][0]) == "DE89370400440532013000"
    stored = raw.select(pl.all().cast(pl.String)).rows()
    for value in ("jane@x.io", "bob@x.io", "203.0.113.7", "1984-07-23", "52340.5", "DE89370400440532013000"):
        assert all(value not in str(cell) for row in stored for cell in row)
    pii_zone = open_zone("pii", load_config())
    vault = pii_zone.read("crm", "people") if pii_zone.delta_table("crm", "people") is not None else None
    assert vault is None or vault.is_empty()


def test_spec_with_encrypt_needs_its_own_key_before_any_run(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec({"iban": "string"}, {"iban": "encrypt"})
    monkeypatch.delenv(ENCRYPTION_KEY_ENV, raising=False)
    assert check_spec(spec) == [
        f"pii.iban: environment variable {ENCRYPTION_KEY_ENV} is not set; it keys the encrypted PII columns "
        "(columns iban). Set it to a secret of at least 16 characters."
    ]
    monkeypatch.setenv(ENCRYPTION_KEY_ENV, TOKENIZER.key.decode())
    monkeypatch.setenv(PII_KEY_ENV, TOKENIZER.key.decode())
    (problem,) = check_spec(spec)
    assert problem.startswith(f"pii.iban: {ENCRYPTION_KEY_ENV} equals {PII_KEY_ENV}")
    assert TOKENIZER.key.decode() not in problem
