"""PII detection by content: a seeded corpus of valid values and look-alikes, precision and recall.

Every valid value below is a published test value or passes its checksum (IBAN mod 97, Luhn, 11-test,
MOD 11,10); every look-alike is what real free text is full of and must come out byte for byte.
"""

from __future__ import annotations

import polars as pl
import pytest

from lakegate import columns as col
from zones.pii import Tokenizer
from zones.pii_detection import (
    RECOGNIZER_NAMES,
    PiiDetection,
    detect,
    findings_metadata,
    replace_spans,
    scan,
    string_columns,
)

TOKENIZER = Tokenizer(b"test-key-0123456789abcdef")

SEEDED: dict[str, list[str]] = {
    "email": ["jane.doe@example.org", "j+tag@mail.example.co.uk", "ops_team-1@sub.example-corp.com"],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "FR14 2004 1010 0505 0001 3M02 606",
        "BE68539007547034",
        "CH9300762011623852957",
    ],
    "card": [
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "5105 1051 0510 5100",
        "2223000048400011",
    ],
    "ipv4": ["192.168.1.20", "8.8.8.8", "203.0.113.7"],
    "ipv6": ["2001:db8::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.128"],
    "us_ssn": ["536-22-8726", "321 54 9876"],
    "uk_nino": ["AB 12 34 56 C", "JG103759A"],
    "nl_bsn": ["111222333", "1234.56.782"],
    "de_tax_id": ["86095742719", "47036892816"],
    "phone": [
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "+49 30 901820",
        "+33 1 23 45 67 89",
        "+31 6 12345678",
        "+447700900123",
        "(415) 555-2671",
        "415-555-2671",
        "1-800-555-0199",
        "020 7946 0958",
        "07700 900123",
        "030 12345678",
        "01 23 45 67 89",
        "06-12345678",
    ],
}
# How a value sits in free text; BSN and Steuer-ID need their name nearby (see pii_detection).
TEMPLATES = {
    "nl_bsn": "Klant met BSN {} belde over de factuur.",
    "de_tax_id": "Steuer-ID des Kunden: {}, bitte pruefen.",
}
DEFAULT_TEMPLATE = "Customer wrote: please use {} from now on (ticket 4471)."

LOOK_ALIKES = [
    "card 4111 1111 1111 1112 was declined",  # Luhn fails
    "card 5500-0000-0000-0005 was declined",
    "amex 378282246310006 expired",
    "IBAN DE89 3704 0044 0532 0130 01 bounced",  # mod 97 fails
    "IBAN GB82 WEST 1234 5698 7654 33 bounced",
    "IBAN NL91ABNA0417164301 bounced",
    "firmware 1.2.3.4.5 released",  # version strings
    "host 10.0.0.256 unreachable",
    "build 999.1.1.1 and 1.2.3",
    "order ORD-2024-000123 shipped",  # order numbers
    "order #123456789 and PO 4500012345 and ref 2024-000123-77",
    "delivered on 2024-01-15, 15.01.2024 and 01/02/2024 10:30 at 12:30:45",  # dates and times
    "total €1,299.00 incl. VAT, shipping $ 12.50, 1 299,00 EUR",  # prices
    "ISBN 978-3-16-148410-0, ISBN 9783161484100, ISBN 0-306-40615-2",  # ISBNs
    "crash in std::vector and Foo::Bar::baz",  # code, not IPv6
    "SSN-like 000-12-3456, 666-12-3456, 123-45-6789, 078-05-1120",  # invalid/sample SSNs
    "order 111222333 and item 86095742719",  # valid checksums, but no BSN/Steuer-ID named
    "Steuer-ID 86095742718 is wrong",  # MOD 11,10 fails
    "BSN 123456789 is not valid",  # 11-test fails
    "NINO QQ 12 34 56 C and GB 12 34 56 A are not issued",
    "call 0800 12 or extension 12-34",  # too short for a phone
    "MAC 00:1A:2B:3C:4D:5E and time 23:59:59",
    "uuid 123e4567-e89b-12d3-a456-426614174000 and sha 9fceb02d0ae598e95dc970b74b0bb2c9c5b6d3a1",
    "see https://example.org:8443/path?id=12345678",
    "located at 52.3702, 4.8952 and -33.8688, 151.2093",
    "total 1.234.567,89 € and 12,345,678.90 USD",
    "UPS 1Z999AA10123456784, EAN 4006381333931, GTIN 00012345600012",
    "timestamps 2024-01-15T10:30:00Z, 2024-01-15 10:30:00.123456, 20240115103000",
    "release v2.10.3, python 3.11.4, kernel 5.15.0-91-generic",
    "invoice INV-2024-0001234, case #0034 5678 9012",
    "temperature 20.5°C at 10:30, 12:00-13:00, ratio 16:9:4",
    "zip 10115 Berlin; 75008 Paris; SW1A 1AA London",
    "log [2024-01-15 10:30:00,123] INFO worker-3 pid=48213 took 0.0123s",
    "account 12345678, sort code 12-34-56",
]


def _seeded_rows() -> list[tuple[str, str, str]]:
    return [
        (kind, value, TEMPLATES.get(kind, DEFAULT_TEMPLATE).format(value))
        for kind, values in SEEDED.items()
        for value in values
    ]


def _precision_recall() -> dict[str, tuple[float, float]]:
    found: dict[str, int] = dict.fromkeys(RECOGNIZER_NAMES, 0)
    right: dict[str, int] = dict.fromkeys(RECOGNIZER_NAMES, 0)
    for kind, value, text in _seeded_rows():
        result = detect(pl.DataFrame({"notes": [text]}), PiiDetection.TOKENIZE, TOKENIZER)
        for (_, recognizer), n in result.findings.items():
            found[recognizer] += n
        exact = result.findings == {("notes", kind): 1} and result.vault["value"].to_list() == [value]
        right[kind] += exact
    for text in LOOK_ALIKES:
        for (_, recognizer), n in scan(pl.DataFrame({"notes": [text]})).items():
            found[recognizer] += n
    return {
        name: (right[name] / found[name] if found[name] else 1.0, right[name] / len(SEEDED[name]))
        for name in RECOGNIZER_NAMES
    }


def test_precision_and_recall_per_recognizer_on_the_corpus() -> None:
    scores = _precision_recall()
    for name, (precision, recall) in scores.items():
        print(f"{name:10} precision {precision:.2f} recall {recall:.2f} ({len(SEEDED[name])} seeded)")
    assert all(recall == 1.0 for _, recall in scores.values()), scores
    assert all(precision >= 0.95 for precision, _ in scores.values()), scores


def test_a_batch_tokenizes_every_seeded_value_and_leaves_look_alikes_byte_for_byte() -> None:
    rows = _seeded_rows()
    frame = pl.DataFrame(
        {"id": range(len(rows) + len(LOOK_ALIKES)), "notes": [t for *_, t in rows] + LOOK_ALIKES}
    )
    result = detect(frame, PiiDetection.TOKENIZE, TOKENIZER)

    out = result.frame["notes"].to_list()
    for (_, value, _), text in zip(rows, out, strict=False):
        assert value not in text and "tok_" in text
    assert out[len(rows) :] == LOOK_ALIKES
    assert result.frame["id"].to_list() == frame["id"].to_list()
    seeded_values = {value for _, value, _ in rows}
    assert set(result.vault["value"].to_list()) == seeded_values
    assert set(result.vault["column"].to_list()) == {"notes"}
    # The tokens are the Tokenizer's: a detected e-mail joins with the same e-mail in a declared column.
    expected = TOKENIZER.token_map(pl.Series(sorted(seeded_values)))
    assert dict(zip(expected["value"], expected["token"], strict=True)) == dict(
        zip(result.vault["value"], result.vault["token"], strict=True)
    )
    assert sum(result.findings.values()) == len(rows)
    assert result.flagged.to_list() == [True] * len(rows) + [False] * len(LOOK_ALIKES)


def test_several_spans_in_one_text_and_across_columns_are_all_replaced() -> None:
    frame = pl.DataFrame(
        {
            "name": ["Jane <jane@x.org>", "Bob", None],
            "notes": ["iban DE89370400440532013000 2 days, call +31 6 12345678 or jane@x.org", None, "ok"],
            "amount": [1, 2, 3],
        }
    )
    protected, vault = replace_spans(frame, None, TOKENIZER)
    token = TOKENIZER.token_map(pl.Series(["jane@x.org"]))["token"][0]
    assert protected["name"].to_list() == [f"Jane <{token}>", "Bob", None]
    notes = protected["notes"][0]
    phone = TOKENIZER.token_map(pl.Series(["+31 6 12345678"]))["token"][0]
    assert notes.startswith("iban tok_") and notes.endswith(f" 2 days, call {phone} or {token}")
    assert sorted(vault["value"].to_list()) == sorted(
        ["jane@x.org", "jane@x.org", "DE89370400440532013000", "+31 6 12345678"]
    )
    assert protected["amount"].to_list() == [1, 2, 3]
    assert frame["name"][0] == "Jane <jane@x.org>"  # the input batch is left as it was
    assert findings_metadata(scan(frame)) == {
        "name.email": 1,
        "notes.email": 1,
        "notes.iban": 1,
        "notes.phone": 1,
    }


def test_an_iban_is_counted_once_not_also_as_a_phone_or_card() -> None:
    assert scan(pl.DataFrame({"t": ["pay DE89 3704 0044 0532 0130 00 today"]})) == {("t", "iban"): 1}


def test_modes_report_quarantine_and_off() -> None:
    frame = pl.DataFrame({"notes": ["mail jane@x.org", "nothing here", "card 4111111111111111"]})

    report = detect(frame, PiiDetection.REPORT, None)
    assert report.frame.equals(frame) and report.vault.is_empty()
    assert report.findings == {("notes", "email"): 1, ("notes", "card"): 1}

    quarantine = detect(
        frame.with_columns(name=pl.Series(["bob@x.org", None, "x"])), PiiDetection.QUARANTINE, TOKENIZER
    )
    assert quarantine.flagged.to_list() == [True, False, True]
    assert quarantine.reasons.to_list() == ["notes: email; name: email", None, "notes: card"]
    assert "jane@x.org" not in quarantine.frame["notes"][0] and quarantine.vault.height == 3

    off = detect(frame, PiiDetection.OFF, None)
    assert off.frame.equals(frame) and off.findings == {} and not off.flagged.any()

    with pytest.raises(ValueError, match="pii_detection: tokenize needs the token key"):
        detect(frame, PiiDetection.TOKENIZE, None)


def test_only_the_named_string_columns_are_scanned() -> None:
    frame = pl.DataFrame({"a": ["jane@x.org"], "b": ["bob@x.org"], "n": [4111111111111111]})
    assert scan(frame, ["a", "n"]) == {("a", "email"): 1}
    assert scan(frame.head(0)) == {}


def test_lineage_columns_are_skipped_but_a_rejected_records_raw_text_is_scanned() -> None:
    frame = pl.DataFrame(
        {
            "note": ["call 020 7946 0958"],
            col.SOURCE: ["file:///landing/crm/ops@example.org/020 7946 0958.csv"],
            col.RAW_TEXT: ['{"note": "mail jane@x.org"}'],
        }
    )
    assert string_columns(frame, skip=["note"]) == [col.RAW_TEXT]
    as_received = pl.DataFrame({"id": ["4111111111111111"], "born": ["1984-07-23"], "note": ["x"]})
    assert string_columns(as_received, declared={"id": "int64", "born": "date", "note": "string"}) == ["note"]
    assert scan(frame) == {("note", "phone"): 1, (col.RAW_TEXT, "email"): 1}
