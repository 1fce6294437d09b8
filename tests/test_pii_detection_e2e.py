"""Issue 13 acceptance: PII found by content in an undeclared free-text field never lands in plaintext.

A support-ticket source (ELT) whose ``notes`` field is not declared PII carries generated, checksum-valid
e-mails, phones, IBANs and card numbers, and look-alikes (broken checksums, version strings, order
numbers, dates). After a Dagster run, every valid value is absent in plaintext from raw, curated,
quarantine, the Delta logs, dlt's working folder and the Dagster event log, and present in the vault;
every look-alike lands byte for byte. Precision and recall per recognizer are printed (``-s``).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_project import instance
from dagster_project.definitions import definitions_for
from lakegate import columns as col
from zones import load_config, open_zone

DEFS = """\
type: dagster_project.components.IngestionPipeline
attributes:
  name: tickets
  domain: support
  connector:
    type: files
    config: {{url: "lakegate://landing/support/tickets/*.ndjson"}}
  pattern: ELT
  primary_key: [ticket_id]
  columns:
    ticket_id: {{type: int64}}
    customer: {{type: string}}
    notes: {{type: string}}
{mode}
"""
KINDS = ("email", "phone", "iban", "card")
PER_KIND = 12


@dataclass(frozen=True)
class Seeded:
    kind: str
    value: str
    text: str


def _luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def _iban_check(country: str, bban: str) -> int:
    rearranged = bban + country + "00"
    return 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97


def _grouped(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def corpus(seed: int = 13) -> tuple[list[Seeded], list[str]]:
    """Valid values (checksums computed) in free text, and look-alike texts that must stay as they are."""
    rng = random.Random(seed)
    valid: list[Seeded] = []
    look_alikes: list[str] = []
    for i in range(PER_KIND):
        name = f"{rng.choice(['jane', 'omar', 'li', 'ana'])}.{rng.choice(['doe', 'khan', 'wu'])}{i}"
        email = f"{name}@mail{i}.example.org"
        valid.append(Seeded("email", email, f"Customer asked to reply to {email} please."))
        local = f"{rng.randrange(1000, 9999)}"
        phone = [f"+44 20 7946 {local}", f"(415) 555-{local}", f"020 7946 {local}", f"+49 30 {local}77"][
            i % 4
        ]
        valid.append(Seeded("phone", phone, f"Call back on {phone} after 5pm."))
        bban = f"{rng.randrange(10**7, 10**8)}{rng.randrange(10**9, 10**10)}"
        check = _iban_check("DE", bban)
        iban = f"DE{check:02d}{bban}"
        written = _grouped(iban) if i % 2 else iban
        valid.append(Seeded("iban", written, f"Refund to IBAN {written} asap."))
        body = rng.choice("45") + "".join(rng.choice("0123456789") for _ in range(14))
        card = body + _luhn_digit(body)
        shown = _grouped(card) if i % 2 else card
        valid.append(Seeded("card", shown, f"Paid with card {shown} yesterday."))
        # Look-alikes: the same shapes with a broken checksum, and what free text is full of.
        bad_card = body + str((int(_luhn_digit(body)) + 1) % 10)
        bad_iban = f"DE{(check % 96) + 2 if (check % 96) + 2 != check else 3:02d}{bban}"
        look_alikes += [
            f"Card {_grouped(bad_card) if i % 2 else bad_card} was declined.",
            f"IBAN {_grouped(bad_iban) if i % 2 else bad_iban} bounced.",
            f"Firmware v{i}.{rng.randrange(10)}.{rng.randrange(20)} and build 1.2.{i}.4.5 released.",
            f"Order ORD-2026-{rng.randrange(10**6):06d} (#{rng.randrange(10**8, 10**9)}) shipped.",
            f"Delivered 2026-{1 + i % 12:02d}-{10 + i:02d}, 1{i % 10}.0{1 + i % 9}.2026 "
            f"and 0{1 + i % 9}/02/2026 10:30.",
            f"Write to support at example dot org, not jane..doe{i}@example.org or ops@{i}.",
        ]
    return valid, look_alikes


def _write_defs(root: Path, mode: str | None) -> Path:
    folder = root / "defs"
    (folder / "tickets").mkdir(parents=True)
    line = f"  pii_detection: {mode}" if mode else ""
    (folder / "tickets" / "defs.yaml").write_text(DEFS.format(mode=line))
    return folder


def _drop(valid: list[Seeded], look_alikes: list[str]) -> None:
    texts = [s.text for s in valid] + look_alikes
    lines = [json.dumps({"ticket_id": i, "customer": f"c{i % 7}", "notes": t}) for i, t in enumerate(texts)]
    landing = open_zone("landing", load_config())
    with fsspec.open(f"{landing.config.url}/support/tickets/t.ndjson", "w", auto_mkdir=True) as handle:
        handle.write("\n".join(lines) + "\n")


def _run(folder: Path) -> dg.ExecuteInProcessResult:
    instance.prepare()
    job = definitions_for(folder).resolve_job_def("support_tickets_job")
    with dg.DagsterInstance.get() as dagster_instance:
        return job.execute_in_process(instance=dagster_instance, raise_on_error=False)


def _decoded(path: Path) -> str:
    table = pq.read_table(path)
    return " ".join(str(v) for column in table.columns for v in column.cast(pa.string()).to_pylist())


def _texts(root: Path) -> list[tuple[Path, str]]:
    """Every file under ``root`` as text (parquet decoded; Delta logs and dlt state as written)."""
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            out.append(
                (path, _decoded(path) if path.suffix == ".parquet" else path.read_text(errors="replace"))
            )
    return out


def _read(zone: str) -> pl.DataFrame:
    return open_zone(zone, load_config()).read("support", "tickets")


def _counts(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    key = dg.AssetKey(["support", "tickets", "raw"])
    event = dg.DagsterInstance.get().get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None
    return dict(event.asset_materialization.metadata["pii_found"].value)  # type: ignore[arg-type]


def _undeclared(result: dg.ExecuteInProcessResult) -> Any:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "pii_undeclared"]
    return evaluation


def precision_recall(
    valid: list[Seeded], vault: list[str], counts: dict[str, int]
) -> dict[str, tuple[float, float]]:
    """Per recognizer: precision = seeded values of that kind vaulted / spans it reported; recall =
    seeded values of that kind vaulted / seeded."""
    vaulted = set(vault)
    found = Counter({name.rpartition(".")[2]: n for name, n in counts.items()})
    right = Counter(s.kind for s in valid if s.value in vaulted)
    seeded = Counter(s.kind for s in valid)
    return {
        kind: (right[kind] / found[kind] if found[kind] else 1.0, right[kind] / seeded[kind])
        for kind in sorted(set(found) | set(seeded))
    }


def test_undeclared_pii_is_tokenized_everywhere_and_look_alikes_land_untouched(
    lakegate_home: Path, tmp_path: Path
) -> None:
    valid, look_alikes = corpus()
    _drop(valid, look_alikes)
    result = _run(_write_defs(tmp_path, None))  # default: tokenize
    assert result.success
    # Plaintext nowhere: zones (data files and Delta logs), dlt's folder, the Dagster event log.
    places = _texts(lakegate_home / "zones" / "raw") + _texts(lakegate_home / "zones" / "curated")
    places += _texts(lakegate_home / "zones" / "quarantine") + _texts(lakegate_home / "dlt")
    assert any("_delta_log" in str(p) for p, _ in places) and any(p.suffix == ".parquet" for p, _ in places)
    events = dg.DagsterInstance.get().all_logs(run_id=result.run_id)
    places.append((Path("dagster event log"), "\n".join(dg.serialize_value(e) for e in events)))
    for seeded in valid:
        for path, text in places:
            assert seeded.value not in text, f"{seeded.kind} leaked into {path}"
    vault = _read("pii")["value"].to_list()
    assert {s.value for s in valid} <= set(vault)
    raw, curated = _read("raw"), _read("curated")
    for frame in (raw, curated):
        notes = frame.sort("ticket_id")["notes"].to_list()
        assert notes[len(valid) :] == look_alikes  # look-alikes byte for byte
        assert all(re.search(r"tok_[0-9a-f]{32}", n) for n in notes[: len(valid)])
    # Same token scheme as declared PII: the token in raw is the vault's key for that value.
    tokens = dict(zip(_read("pii")["value"].to_list(), _read("pii")["token"].to_list(), strict=True))
    assert valid[0].text.replace(valid[0].value, tokens[valid[0].value]) in raw["notes"].to_list()
    counts = _counts(result)
    assert set(counts) == {f"notes.{k}" for k in KINDS}  # counts per column and recognizer, no value
    assert _undeclared(result).passed
    scores = precision_recall(valid, vault, counts)
    for kind, (precision, recall) in scores.items():
        print(f"{kind:6} precision {precision:.2f} recall {recall:.2f} ({PER_KIND} seeded)")
    assert all(p == 1.0 and r == 1.0 for p, r in scores.values()), scores


def test_quarantine_mode_sends_records_with_pii_to_quarantine_tokenized(
    lakegate_home: Path, tmp_path: Path
) -> None:
    valid, look_alikes = corpus()
    _drop(valid, look_alikes)
    result = _run(_write_defs(tmp_path, "quarantine"))
    assert result.success
    raw = _read("raw")
    assert sorted(raw["notes"].to_list()) == sorted(look_alikes)
    quarantine = _read("quarantine")
    assert quarantine.height == len(valid) and set(quarantine[col.RULE]) == {"pii_detected"}
    assert quarantine[col.REASON].str.contains("notes: ").all()
    for seeded in valid:
        for path, text in _texts(lakegate_home / "zones" / "quarantine") + _texts(
            lakegate_home / "zones" / "raw"
        ):
            assert seeded.value not in text, f"{seeded.kind} leaked into {path}"
    assert quarantine[col.RAW_TEXT].str.contains("tok_").all()
    assert {s.value for s in valid} <= set(_read("pii")["value"].to_list())


def test_report_mode_counts_and_the_check_warns(lakegate_home: Path, tmp_path: Path) -> None:
    valid, look_alikes = corpus()
    _drop(valid, look_alikes)
    result = _run(_write_defs(tmp_path, "report"))
    assert result.success  # a warning, not a failure
    evaluation = _undeclared(result)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["spans_found"].value == len(valid)
    assert sorted(_read("raw")["notes"].to_list()) == sorted([s.text for s in valid] + look_alikes)
    counts = _counts(result)
    assert counts == {f"notes.{k}": PER_KIND for k in KINDS}
    text = " ".join(dg.serialize_value(e) for e in dg.DagsterInstance.get().all_logs(run_id=result.run_id))
    assert not any(s.value in text for s in valid)  # counts in metadata, never a value


@pytest.mark.parametrize(
    ("mode", "flags", "origin"),
    [("tokenize", [], "the last run"), ("report", ["--scan"], "a scan of 120 row(s) of raw")],
)
def test_pii_suggest_proposes_the_block(
    lakegate_home: Path,
    tmp_path: Path,
    mode: str,
    flags: list[str],
    origin: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dagster_project import cli_pii
    from dagster_project.cli import main

    valid, look_alikes = corpus()
    _drop(valid, look_alikes)
    folder = _write_defs(tmp_path, mode)
    assert _run(folder).success
    monkeypatch.setattr(cli_pii, "DEFS_FOLDER", folder)
    assert main(["pii", "suggest", "tickets", *flags]) == 0
    out = capsys.readouterr().out
    assert f"# PII found by content in {origin}" in out
    assert "pii:\n  notes: tokenize\n" in out and "notes: card 12, email 12, iban 12, phone 12" in out
    assert not any(s.value in out for s in valid)


def test_pii_detection_is_checked_with_a_suggestion(
    lakegate_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dagster_project.cli import main

    assert main(["check", "--defs", str(_write_defs(tmp_path / "typo", "tokenise"))]) == 2
    err = capsys.readouterr().err
    assert "attributes.pii_detection: " in err and "did you mean 'tokenize'?" in err
    assert main(["check", "--defs", str(_write_defs(tmp_path / "off", "off"))]) == 0  # YAML's `off` is false


def test_found_pii_is_revealed_and_erased_like_declared_pii(
    lakegate_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import PII_KEY
    from zones.erasure import DatasetRules, ErasurePolicy, erase
    from zones.pii import Tokenizer
    from zones.pii_rights import reveal

    config_file = tmp_path / "lakegate.yaml"
    config_file.write_text("access: {pii: [alice]}\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config_file))
    valid, look_alikes = corpus()
    _drop(valid, look_alikes)
    assert _run(_write_defs(tmp_path, None)).success
    subject = valid[0]  # an e-mail inside the free text of one ticket
    token = Tokenizer(PII_KEY.encode()).token_map(pl.Series([subject.value]))["token"][0]
    assert reveal(load_config(), "support/tickets", token, "case 1", "alice") == subject.value
    rules = {"support/tickets": DatasetRules(ErasurePolicy.DELETE, ())}
    erase(
        load_config(),
        subject.value,
        tokenizers=[Tokenizer(PII_KEY.encode())],
        rules=rules,
        who="alice",
        reason="r",
    )
    for zone in ("raw", "curated"):
        notes = _read(zone)["notes"]
        assert notes.len() == len(valid) + len(look_alikes) - 1 and not notes.str.contains(token).any()
    assert subject.value not in _read("pii")["value"].to_list()
