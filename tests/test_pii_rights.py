"""PII rights (issue 13): audited reveal, erasure across zones/history/backups/logs, resumable key rotation.

Data comes through the real write path: the demo drops run by ``lakegate run customers`` (ETL: curated,
vault, quarantine) and a ``support/tickets`` dataset loaded by the lakegate dlt destination into raw,
whose e-mails join the customers' and whose free text holds tokens the way content detection writes them.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import dlt
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from dagster_project.cli import main
from tests.conftest import PII_KEY
from zones import DatasetSpec, LoadReport, LoadTarget, ZoneName, lakegate_pipeline, load_config, open_zone
from zones.backup import datasets
from zones.config import ZoneConfigError
from zones.erasure import DatasetRules, ErasurePolicy, erase
from zones.pii import PiiMethod, Tokenizer
from zones.pii_rights import PRINCIPAL_ENV, read_rights
from zones.rotation import NEW_KEY_ENV, ROTATION_APP, key_id

SUBJECT = "customer9@example.com"  # the vault's greatest value: its Delta statistics hold it
OTHER = "customer4@example.com"
ZONES = ("raw", "curated", "quarantine", "pii")
NEW_KEY = "new-pii-key-fedcba9876543210"


def toks(values: list[str], key: str = PII_KEY) -> list[str]:
    """The tokens of ``values`` (one HMAC per distinct value), in order."""
    mapping = Tokenizer(key.encode()).token_map(pl.Series(values))
    lookup = dict(zip(mapping["value"], mapping["token"], strict=True))
    return [lookup[v] for v in values]


def tok(value: str, key: str = PII_KEY) -> str:
    return str(Tokenizer(key.encode()).token_map(pl.Series([value]))["token"][0])


def load_tickets(more: int = 0) -> None:
    """``support/tickets`` in raw through the lakegate destination (email tokenized and vaulted); ``more``
    tickets after the first five: a third by demo customers (quoting their token in the text), the rest by
    distinct people (a big vault)."""
    rows = {
        "ticket_id": [1, 2, 3, 4, 5],
        "email": [SUBJECT, OTHER, "customer5@example.com", None, SUBJECT],
        # Ticket 4 has no author; its text holds the subject as content detection leaves it: a token.
        "notes": ["late parcel", "refund", "thanks", f"forwarded by {tok(SUBJECT)} today", "again"],
    }
    if more:
        emails = [
            f"customer{i % 200 + 1}@example.com" if i % 3 == 0 else f"p{i}@example.org" for i in range(more)
        ]
        rows = {
            "ticket_id": list(range(6, 6 + more)),
            "email": emails,
            "notes": [f"see {t}" if i % 3 == 0 else "ok" for i, t in enumerate(toks(emails))],
        }
    spec = DatasetSpec(domain="support", name="tickets", pii={"email": PiiMethod.TOKENIZE})
    target = LoadTarget(dataset=spec, zone=ZoneName.RAW, pipeline="tickets", run_id="t", config=load_config())

    @dlt.resource(name="tickets")
    def tickets() -> pa.Table:
        yield pa.table(rows)

    with lakegate_pipeline("tickets", target, LoadReport()) as pipeline:
        pipeline.run(tickets())


@pytest.fixture
def lake(lakegate_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Demo customers (ETL) and tickets (raw), every zone backed up under ``<tmp>/backup``; alice holds
    the pii role."""
    backup = lakegate_home.parent / "backup"
    lines = ["access: {pii: [alice]}", "zones:"]
    lines += [f"  {z}: {{backup: {{url: '{(backup / z).as_uri()}'}}}}" for z in ZONES]
    config = lakegate_home.parent / "lakegate.yaml"
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(config))
    monkeypatch.setenv(PRINCIPAL_ENV, "alice")
    assert main(["demo", "--rows", "50"]) == 0
    assert main(["run", "customers"]) == 0
    assert main(["run", "orders"]) == 0  # tables without PII: a rotation rewrites them too
    load_tickets()
    vault = open_zone("pii", load_config()).delta_table("support", "tickets")
    assert vault is not None
    vault.create_checkpoint()  # as table upkeep does: the checkpoint carries the statistics too
    for zone in ZONES:
        assert main(["backup", zone]) == 0
    return backup


def files_text(root: Path) -> dict[Path, str]:
    """Every file under ``root`` as text (parquet decoded, everything else as bytes read)."""
    out = {}
    for path in root.rglob("*"):
        if path.suffix == ".parquet":
            out[path] = str(pq.read_table(path).to_pylist())  # data files and checkpoints alike
        elif path.is_file():
            out[path] = path.read_text(errors="replace")
    return out


def readable_versions(uri: str) -> list[pl.DataFrame]:
    """Every version of the table that can still be read (erasure removes files older ones need)."""
    frames = []
    for version in range(DeltaTable(uri).version() + 1):
        try:
            frames.append(pl.read_delta(uri, version=version))
        except Exception:  # a version whose files were erased: unreadable by design
            continue
    return frames


def holds(frame: pl.DataFrame, needle: str) -> int:
    text = [c for c, t in frame.schema.items() if t == pl.String]
    if not text or not frame.height:
        return 0
    return frame.select(
        pl.any_horizontal(pl.col(c).str.contains(needle, literal=True) for c in text).sum()
    ).item()


def tokens_in(frame: pl.DataFrame) -> set[str]:
    found: set[str] = set()
    for column, dtype in frame.schema.items():
        if dtype == pl.String:
            found |= set(frame[column].str.extract_all(r"tok_[0-9a-f]{32}").explode().drop_nulls().to_list())
    return found


def all_tables(home: Path, backup: Path) -> list[str]:
    config = load_config()
    uris = []
    for zone in ZONES:
        for name in datasets(open_zone(zone, config)):
            uris += [f"{home}/zones/{zone}/{name}", f"{backup}/{zone}/{name}"]
    return [u for u in uris if Path(u, "_delta_log").exists()]


def current(zone: str, dataset: str) -> pl.DataFrame:
    domain, name = dataset.split("/")
    return open_zone(zone, load_config()).read(domain, name)


def test_erase_leaves_the_subject_nowhere_and_everyone_else_untouched(
    lake: Path, lakegate_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tok(SUBJECT)
    before = {
        (z, d): current(z, d)
        for z in ZONES
        for d in datasets(open_zone(z, load_config()))
        if "_lakegate" not in d
    }
    assert holds(before["curated", "crm/customers"], token) == 1
    assert holds(before["raw", "support/tickets"], token) == 3
    texts = files_text(lake)
    assert any(SUBJECT in t for p, t in texts.items() if "_delta_log" in str(p) and p.suffix == ".json")
    assert any(SUBJECT in t for p, t in texts.items() if ".checkpoint." in p.name)  # statistics, backed up

    assert main(["erase", "--subject", SUBJECT, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "curated crm/customers: 1 row(s) deleted" in dry and "raw support/tickets: 3 row(s) deleted" in dry
    assert SUBJECT not in dry and token not in dry
    for (zone, dataset), frame in before.items():  # a dry run changes nothing
        assert current(zone, dataset).equals(frame)

    assert main(["erase", "--subject", SUBJECT, "--reason", "ticket GDPR-17"]) == 0
    proof = capsys.readouterr().out
    assert "pii crm/customers: 1 row(s) deleted" in proof and "subject was erased" in proof
    assert proof == dry.replace("would be", "was")  # the dry run showed exactly this
    assert "(archived, already ingested)" in proof  # the ingested drop, kept in the landing archive
    assert SUBJECT not in proof and token not in proof

    # Plaintext nowhere: zone files of every version, Delta logs (statistics, predicates), backups, dlt's
    # working folder, the Dagster event log.
    instance = dg.DagsterInstance.get()
    events = [e for run in instance.get_runs() for e in instance.all_logs(run_id=run.run_id)]
    assert len(instance.get_runs()) == 2 and events
    assert SUBJECT not in "\n".join(dg.serialize_value(e) for e in events)
    for root in (lakegate_home / "zones", lake, lakegate_home / "dlt"):
        for path, text in files_text(root).items():
            if "/landing/" in str(path) and "/_archive/" not in str(path):
                continue  # a drop not ingested yet, as delivered (the proof lists it)
            assert SUBJECT not in text, f"plaintext left in {path}"
            assert token not in text, f"token left in {path}"
    # Recomputing the token finds no row in any readable version, zone or backup.
    readable = 0
    for uri in all_tables(lakegate_home, lake):
        for frame in readable_versions(uri):
            readable += 1
            assert holds(frame, token) == 0 and holds(frame, SUBJECT) == 0, uri
    assert readable > len(all_tables(lakegate_home, lake))  # time travel of the other versions is kept
    # Everyone else untouched: exactly the subject's rows are gone.
    for (zone, dataset), frame in before.items():
        kept = frame.filter(
            ~pl.any_horizontal(
                pl.col(c).str.contains(token, literal=True) | (pl.col(c) == SUBJECT)
                for c, t in frame.schema.items()
                if t == pl.String
            ).fill_null(False)
        )
        after = current(zone, dataset)
        assert after.height == kept.height, (zone, dataset)
        assert after.sort(after.columns).equals(kept.sort(kept.columns).select(after.columns)), (
            zone,
            dataset,
        )
    assert main(["reveal", "crm/customers", "--token", tok(OTHER), "--reason", "support"]) == 0
    assert capsys.readouterr().out.strip() == OTHER
    # The erasure is audited, without value or token; a restore from the backup brings nothing back.
    audit = read_rights(load_config())
    erased = audit.filter(pl.col("action") == "erase")
    assert (
        erased.height == 1 and erased["reason"][0] == "ticket GDPR-17" and erased["principal"][0] == "alice"
    )
    assert (
        erased["token"][0] == "" and SUBJECT not in erased["details"][0] and token not in erased["details"][0]
    )
    assert audit.filter(pl.col("action") == "erase-dry-run").height == 1
    target = lakegate_home.parent / "restored"
    assert main(["restore", "curated", "crm/customers", "--to", target.as_uri()]) == 0
    restored = pl.read_delta(str(target))
    assert holds(restored, token) == 0 and restored.height == before["curated", "crm/customers"].height - 1


def test_erase_finds_a_vaulted_raw_line_and_nulls_by_policy(
    lake: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's unparseable customer line is vaulted whole; its quarantine record holds the line's token.
    broken = "broken-line@example.com"
    quarantined = current("quarantine", "crm/customers").height
    monkeypatch.setattr("sys.stdin", io.StringIO(broken + "\n"))  # kept out of the process list
    assert main(["erase", "--subject", "-", "--dataset", "crm/customers"]) == 0
    assert "quarantine crm/customers: 1 row(s) deleted" in capsys.readouterr().out
    assert current("quarantine", "crm/customers").height == quarantined - 1
    assert (
        not current("pii", "crm/customers").filter(pl.col("value").str.contains(broken, literal=True)).height
    )
    # erasure: null keeps the rows: the PII column nulled, a token inside free text replaced.
    rules = {"support/tickets": DatasetRules(ErasurePolicy.NULL, ("email",))}
    tokenizer = Tokenizer(PII_KEY.encode())
    erase(
        load_config(),
        SUBJECT,
        tokenizers=[tokenizer],
        rules=rules,
        who="alice",
        reason="r",
        only=["support/tickets"],
    )
    tickets = current("raw", "support/tickets").sort("ticket_id")
    assert tickets.height == 5
    assert tickets["email"].to_list()[0] is None and tickets["email"].to_list()[4] is None
    assert tickets["notes"][3] == "forwarded by [erased] today"
    assert tickets["email"][1] == tok(OTHER)
    assert current("pii", "support/tickets").filter(pl.col("token") == tok(SUBJECT)).is_empty()


def test_reveal_for_the_pii_role_only_and_always_audited(
    lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tok(OTHER)
    assert (
        main(["reveal", "crm/customers", "--token", token, "--reason", "fraud case 12", "--as", "alice"]) == 0
    )
    assert capsys.readouterr().out.strip() == OTHER
    assert main(["reveal", "crm/customers", "--token", token, "--reason", "curious", "--as", "bob"]) == 2
    out = capsys.readouterr()
    assert OTHER not in out.out + out.err
    assert out.err.count("\n") == 1 and "'bob' does not hold the pii role" in out.err
    assert main(["erase", "--subject", OTHER, "--as", "bob"]) == 2
    assert "erasure refused and audited" in capsys.readouterr().err
    assert current("curated", "crm/customers").filter(pl.col("email") == token).height == 1
    audit = read_rights(load_config()).sort("at")
    rows = audit.select("principal", "action", "outcome", "reason", "dataset", "token").rows()
    assert rows == [
        ("alice", "reveal", "granted", "fraud case 12", "crm/customers", token),
        ("bob", "reveal", "refused", "curious", "crm/customers", token),
        ("bob", "erase", "refused", "right to erasure request", "*", ""),
    ]
    assert OTHER not in " ".join(str(v) for row in audit.rows() for v in row)
    assert main(["erase", "--subject", OTHER, "--dataset", "crm/customer"]) == 2
    err = capsys.readouterr().err
    assert "--dataset crm/customer: no such dataset in any zone (did you mean 'crm/customers'?)" in err
    assert OTHER not in err and err.count("\n") == 1


def _marked(app: str, home: Path) -> int:
    done = 0
    for zone in ZONES:
        for log in (home / "zones" / zone).glob("*/*/_delta_log"):
            if "_lakegate" not in str(log):
                done += (DeltaTable(str(log.parent)).transaction_version(app) or 0) >= 1
    return done


def _commits(home: Path) -> dict[Path, int]:
    """Commit count of every data table's log (cheap enough to poll while a rotation runs)."""
    logs = [
        log
        for z in ZONES
        for log in (home / "zones" / z).glob("*/*/_delta_log")
        if "_lakegate" not in str(log)
    ]
    return {log: sum(1 for e in os.scandir(log) if e.name.endswith(".json")) for log in logs}


def _changed(before: dict[Path, int], home: Path) -> int:
    return sum(1 for log, n in _commits(home).items() if n > before.get(log, 0))


def _snapshot(home: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for zone in ZONES:
        for log in (home / "zones" / zone).glob("*/*/_delta_log"):
            if "_lakegate" not in str(log):
                out[f"{zone}/{log.parent.parent.name}/{log.parent.name}"] = pl.read_delta(str(log.parent))
    return out


def _joins() -> list[tuple[int, int]]:
    tickets, customers = current("raw", "support/tickets"), current("curated", "crm/customers")
    joined = tickets.join(customers, on="email").select("ticket_id", "customer_id").sort("ticket_id")
    return list(joined.iter_rows())


def test_rotation_killed_at_a_random_point_resumes_to_every_token_under_the_new_key(
    lake: Path, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_tickets(more=300_000)  # tables whose rewrite takes a while (raw first, the vault last)
    rng = random.Random(13)
    joins, before = _joins(), _snapshot(lakegate_home)
    assert len(joins) == 100_004  # tickets 1, 2, 3, 5 and a third of the added ones match a customer
    monkeypatch.setenv(NEW_KEY_ENV, NEW_KEY)
    app = ROTATION_APP + key_id(Tokenizer(NEW_KEY.encode()))
    tables = sum(1 for frame in before.values() if tokens_in(frame))  # tables without tokens stay as they are
    assert tables >= 4
    command = [sys.executable, "-m", "dagster_project.cli", "pii", "rotate-key"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    commits = _commits(lakegate_home)
    while process.poll() is None and not _changed(commits, lakegate_home):
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.5))  # after the first table: inside a rewrite, or between two
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted = _marked(app, lakegate_home)
    assert 0 < interrupted < tables, "the kill must land mid-rotation"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("already rotated") >= interrupted
    assert _marked(app, lakegate_home) == tables

    after = _snapshot(lakegate_home)
    assert set(after) == set(before)
    for name, frame in before.items():
        if not tokens_in(frame):
            assert after[name].equals(frame), name
    values = pl.concat([f["value"] for name, f in after.items() if name.startswith("pii/")]).unique()
    old, new = set(toks(values.to_list())), set(toks(values.to_list(), NEW_KEY))
    for name, frame in after.items():  # nothing lost, no old token left, every token a new one
        assert frame.height == before[name].height, name
        found = tokens_in(frame)
        assert found <= new and not found & old, name
    vault = current("pii", "crm/customers")
    assert set(vault["token"]) == set(toks(vault["value"].to_list(), NEW_KEY))
    monkeypatch.setenv("LAKEGATE_PII_KEY", NEW_KEY)
    assert _joins() == joins  # same value, same new token in every dataset
    assert (
        current("raw", "support/tickets").sort("ticket_id")["notes"][3]
        == f"forwarded by {tok(SUBJECT, NEW_KEY)} today"
    )
    assert read_rights(load_config()).filter(pl.col("action") == "rotate-key").height == 1


def test_access_roles_are_checked_at_load(tmp_path: Path) -> None:
    config = tmp_path / "lakegate.yaml"
    config.write_text("access: {pii: [alice, bob]}\n")
    assert load_config(config, env={"LAKEGATE_HOME": str(tmp_path)}).access.pii == ("alice", "bob")
    config.write_text("access: {pi: [alice]}\n")
    with pytest.raises(
        ZoneConfigError,
        match=r"lakegate.yaml: access.pi: Extra inputs are not permitted \(did you mean 'pii'\?\)",
    ):
        load_config(config, env={"LAKEGATE_HOME": str(tmp_path)})
