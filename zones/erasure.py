"""Right to erasure: one subject out of every zone, every Delta version and every backup, Dagster-free.

``erase`` computes the subject's token and keyed hash (and ciphertext, when ``encrypt`` columns are
declared) with the PII keys, then for every Delta table of raw, curated, quarantine and the pii zone
(their backups too):

1. **rows**: a row holds the subject when one of its text columns contains one of them (whole, or
   inside free text the way content detection writes ``"write to tok_... today"``), equals the
   plaintext, or -- a vaulted raw line of an unparseable record -- contains the plaintext as a word.
   Those rows are deleted by one Delta ``delete`` (or, with the dataset's ``erasure: null`` policy,
   their PII columns nulled and embedded tokens replaced by ``[erased]`` by one ``update``). Tokens of
   vaulted raw lines holding the subject are erased wherever they appear too.
2. **history**: every data file still in storage that holds the subject and no longer belongs to the
   current version (tombstoned by step 1 or by earlier merges, or orphaned) is removed at once --
   overriding the time-travel window for those files only. A ``vacuum`` with retention 0 would also
   remove every other tombstoned file and end time travel for the whole table; removing just these files
   leaves every version that does not reference them readable. The price: a version that referenced one
   of them can no longer be read (its other rows included).
3. **logs**: Delta log entries (JSON commits and checkpoints) that mention the subject -- column
   statistics (min/max) or the erasure's own predicate -- are rewritten without them: an ``add``'s
   statistics are dropped (readers only lose data skipping for that file), a commit's text is replaced
   by ``[erased]``.
4. **backups** are rewritten the same way, not tombstoned: a tombstone list applied at restore would
   keep the plaintext in the backup, which erasure must not. The backup is first brought up to date,
   then the erasure commit copied into it, and its files and log scrubbed like the zone's.

Landing drops are the vendor's delivery and are not changed: the proof lists those holding the subject.
The erasure is audited in the pii zone's rights log with its proof, never with the value or its token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from fsspec import AbstractFileSystem

from lakegate import columns as col
from lakegate.registry import suggest
from zones.backup import LOG, Tree, backup_dataset, datasets
from zones.config import LakegateConfig, Location, ZoneName
from zones.errors import ZoneError
from zones.pii import Encryptor, Tokenizer
from zones.pii_rights import PiiAccessDenied, RightsRecord, details, holds_pii_role, record_rights
from zones.retention import ARCHIVE_FOLDER
from zones.storage import delta_options, open_zone

ERASED = "[erased]"
ERASABLE_ZONES = (ZoneName.RAW, ZoneName.CURATED, ZoneName.QUARANTINE, ZoneName.PII)
_INTERNAL = "_lakegate/"
_CHUNK = 8 * 1024 * 1024
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


class ErasurePolicy(StrEnum):
    """What erasure does to a dataset's rows holding the subject (``erasure:`` in defs.yaml)."""

    DELETE = "delete"
    """Delete the rows (the default)."""
    NULL = "null"
    """Keep the rows: null the PII columns (and a column equal to the plaintext), replace tokens inside
    other text by ``[erased]``. Quarantine and vault rows are always deleted."""


@dataclass(frozen=True)
class DatasetRules:
    """What erasure needs to know about one dataset from its pipeline spec."""

    erasure: ErasurePolicy = ErasurePolicy.DELETE
    pii_columns: tuple[str, ...] = ()


class ErasureError(ZoneError, RuntimeError):
    """An erasure could not complete; the message names the table (never the subject)."""


@dataclass
class Step:
    """What was found in one place and what was (or, in a dry run, would be) done there."""

    place: str
    rows: int = 0
    action: str = ""
    history_files: int = 0
    log_entries: int = 0
    backup: tuple[int, int] | None = None
    """Files removed and log entries scrubbed in the zone's backup (``None``: the zone has none)."""


@dataclass
class Proof:
    """Where the subject was found and what was done, without the value or its token."""

    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    landing_files: list[str] = field(default_factory=list)
    """Drops still waiting in the landing zone that hold the subject as delivered (not changed)."""
    archived_files: dict[str, int] = field(default_factory=dict)
    """Archived landing files (already ingested) -> occurrences of the subject replaced by ``[erased]``."""

    @property
    def found(self) -> bool:
        return (
            any(s.rows or s.history_files or s.log_entries for s in self.steps)
            or bool(self.landing_files)
            or bool(self.archived_files)
        )

    def lines(self) -> list[str]:
        """The proof as printable lines."""
        verb = "would be" if self.dry_run else "was"
        out = [
            f"{s.place}: {s.rows} row(s) {s.action or 'untouched'}; {s.history_files} file(s) of older "
            f"versions removed; {s.log_entries} log entr(y/ies) scrubbed"
            + (
                f"; backup: {s.backup[0]} file(s) removed, {s.backup[1]} log entr(y/ies) scrubbed"
                if s.backup
                else ""
            )
            for s in self.steps
        ]
        out += [
            f"landing {f}: {n} occurrence(s) {verb} replaced by {ERASED} (archived, already ingested)"
            for f, n in self.archived_files.items()
        ]
        out += [
            f"landing {f}: holds the subject as delivered, not ingested yet (not changed; delete the drop)"
            for f in self.landing_files
        ]
        out.append(f"subject {verb} {'erased' if self.found else 'not found'} ({len(self.steps)} place(s))")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "steps": [asdict(s) for s in self.steps],
            "landing": self.landing_files,
            "archived": self.archived_files,
        }


@dataclass(frozen=True)
class _Needles:
    """What identifies the subject: substrings (tokens, hashes) and the plaintext."""

    substrings: frozenset[str]
    plaintext: str

    @property
    def word(self) -> str:
        return rf"(?:^|[^\w.+\-]){re.escape(self.plaintext)}(?:$|[^\w])"

    def mask(self, column: str) -> pl.Expr:
        text = pl.col(column).cast(pl.String)
        hit = (text == self.plaintext) | text.str.contains(self.word)
        for needle in self.substrings:
            hit = hit | text.str.contains(needle, literal=True)
        return hit.fill_null(False)

    def in_text(self, text: str) -> bool:
        return self.plaintext in text or any(n in text for n in self.substrings)


def erase(
    config: LakegateConfig,
    subject: str,
    *,
    tokenizers: Sequence[Tokenizer],
    rules: Mapping[str, DatasetRules],
    who: str,
    reason: str,
    only: Sequence[str] = (),
    dry_run: bool = False,
    run_id: str = "",
    encryptor: Encryptor | None = None,
) -> Proof:
    """Erase ``subject`` from every dataset (or the ``only`` ones) of every zone, its history and backups.

    Args:
        tokenizers: The current PII key's tokenizer first, then retired keys still held by history
            (``$LAKEGATE_PII_KEY_OLD`` after a rotation).
        rules: ``DOMAIN/DATASET`` -> its erasure policy and PII columns (default: delete).
        who, reason: Audited with the proof; ``who`` must hold the pii role.
        dry_run: Find and report only; nothing changes (the dry run is audited too).
        encryptor: Keys ``encrypt`` columns (``$LAKEGATE_PII_ENCRYPTION_KEY``), when some are declared.

    Raises:
        PiiAccessDenied: ``who`` does not hold the pii role (audited).
        ErasureError: the subject is empty, or a dataset of ``only`` is in no zone.
    """
    if not subject.strip():
        raise ErasureError("--subject is empty; give the value to erase (e.g. an e-mail address)")
    pii_zone = open_zone(ZoneName.PII, config)
    if not holds_pii_role(config, who):
        record_rights(pii_zone, RightsRecord(who, "erase", "refused", reason, ",".join(only) or "*", ""))
        raise PiiAccessDenied(
            f"principal '{who}' does not hold the pii role (access.pii in {config.source}); "
            "erasure refused and audited"
        )
    single = pl.Series([subject])
    substrings = {t.token_map(single)["token"][0] for t in tokenizers}
    substrings |= {t.hash_map(single)["hash"][0] for t in tokenizers}
    if encryptor is not None:  # deterministic ciphertexts of ``encrypt`` columns identify the subject too
        substrings.add(encryptor.encrypt_map(single)["encrypted"][0])
    needles = _Needles(frozenset(substrings), subject)
    proof = Proof(dry_run)
    # Vault first: the tokens of vaulted raw lines holding the subject are needles everywhere else.
    tables = [
        (zone, name) for zone in (ZoneName.PII, *ERASABLE_ZONES[:3]) for name in _datasets(config, zone, only)
    ]
    named = {name.split("__")[0] for _, name in tables}
    unknown = [d for d in only if d not in named]
    if unknown:
        known = sorted({n.split("__")[0] for z in ERASABLE_ZONES for n in _datasets(config, z, ())})
        raise ErasureError(
            f"--dataset {unknown[0]}: no such dataset in any zone{suggest(unknown[0], known)}; "
            f"datasets: {', '.join(known) or 'none yet'}"
        )
    for zone_name, name in tables:
        if zone_name is ZoneName.PII:
            needles = _with_line_tokens(config, name, needles)
    for zone_name, name in tables:
        proof.steps.append(_erase_table(config, zone_name, name, needles, rules, dry_run))
    proof.archived_files, proof.landing_files = _erase_landing(config, needles, dry_run)
    record_rights(
        pii_zone,
        RightsRecord(
            who,
            "erase-dry-run" if dry_run else "erase",
            "done",
            reason,
            ",".join(only) or "*",
            "",
            details(proof=proof.as_dict(), run_id=run_id),
        ),
    )
    return proof


def _datasets(config: LakegateConfig, zone: ZoneName, only: Sequence[str]) -> list[str]:
    names = [n for n in datasets(open_zone(zone, config)) if not n.startswith(_INTERNAL)]
    return [n for n in names if not only or n in only or n.split("__")[0] in only]


def _with_line_tokens(config: LakegateConfig, name: str, needles: _Needles) -> _Needles:
    """Add the tokens of vaulted raw lines (whole unparseable records) that hold the subject."""
    domain, dataset = name.split("/")
    vault = open_zone(ZoneName.PII, config).read(domain, dataset)
    if not vault.height or "value" not in vault.columns:
        return needles
    lines = vault.filter((pl.col("column") == col.RAW_TEXT) & needles.mask("value"))
    return _Needles(needles.substrings | frozenset(lines["token"].to_list()), needles.plaintext)


def _erase_table(
    config: LakegateConfig,
    zone_name: ZoneName,
    name: str,
    needles: _Needles,
    rules: Mapping[str, DatasetRules],
    dry_run: bool,
) -> Step:
    zone = open_zone(zone_name, config)
    uri = f"{zone.config.url}/{name}"
    table = DeltaTable(uri, storage_options=zone.delta_options())
    step = Step(f"{zone_name.value} {name}")
    frame = pl.read_delta(table)
    text_columns = [c for c, t in frame.schema.items() if t == pl.String]
    hits = {c: frame.filter(needles.mask(c))[c].unique().to_list() for c in text_columns}
    hits = {c: v for c, v in hits.items() if v}
    rule = rules.get(name.split("__")[0], DatasetRules())
    nulling = rule.erasure is ErasurePolicy.NULL and zone_name in (ZoneName.RAW, ZoneName.CURATED)
    backup = zone.config.backup
    if backup is not None and not dry_run:  # the backup must hold every version before files go
        _sync_backup(zone.config, backup, name)
    if hits:
        predicate = " OR ".join(f'"{c}" IN ({_sql_list(v)})' for c, v in hits.items())
        step.rows = frame.filter(pl.any_horizontal(needles.mask(c) for c in hits)).height
        step.action = "nulled (erasure: null)" if nulling else "deleted"
        if not dry_run:
            if nulling:
                table.update(updates=_null_updates(hits, needles, rule), predicate=predicate)
            else:
                table.delete(predicate)
    matched = frozenset(v for values in hits.values() for v in values)
    log_needles = _Needles(needles.substrings | matched, needles.plaintext)
    step.history_files, step.log_entries = _scrub_tree(zone.config, name, needles, log_needles, dry_run)
    if dry_run and hits:
        step.log_entries += 1  # the erasure's own commit (its predicate names what it deletes)
    if backup is not None:
        if not dry_run:  # copy the erasure commit, so the backup's latest version is erased too
            _sync_backup(zone.config, backup, name)
        step.backup = _scrub_tree(backup, name, needles, log_needles, dry_run)
    return step


def _sync_backup(source: Location, backup: Location, name: str) -> None:
    target = Tree.of(backup)
    if target.log_files(name):  # a dataset never backed up has nothing to erase there
        backup_dataset(Tree.of(source), target, name)


def _null_updates(hits: Mapping[str, list[str]], needles: _Needles, rule: DatasetRules) -> dict[str, str]:
    updates = {}
    for column, values in hits.items():
        if column in rule.pii_columns or needles.plaintext in values:
            new = "NULL"
        else:
            new = f'"{column}"'
            for needle in sorted(needles.substrings, key=len, reverse=True):
                new = f"replace({new}, {_sql(needle)}, {_sql(ERASED)})"
        updates[column] = f'CASE WHEN "{column}" IN ({_sql_list(values)}) THEN {new} ELSE "{column}" END'
    return updates


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(_sql(v) for v in values)


def _scrub_tree(
    location: Location, name: str, needles: _Needles, log_needles: _Needles, dry_run: bool
) -> tuple[int, int]:
    """Remove the data files of ``name`` holding the subject outside its current version; scrub its log.

    Returns the number of files removed and of log files rewritten (or that would be, in a dry run).
    """
    tree = Tree.of(location)
    root = f"{tree.root}/{name}"
    if not tree.log_files(name):
        return 0, 0
    current = DeltaTable(f"{location.url}/{name}", storage_options=delta_options(location))
    # A dry run counts the live files too: the erasure's delete would tombstone them first.
    live = (
        set()
        if dry_run
        else {unquote(str(p)) for p in pa.table(current.get_add_actions(flatten=True))["path"].to_pylist()}
    )
    stale = [
        p
        for p in tree.fs.find(root)
        if p.endswith(".parquet") and f"/{LOG}/" not in p and p.removeprefix(f"{root}/") not in live
    ]
    holding = [p for p in stale if _file_holds(tree.fs, p, needles)]
    if not dry_run:
        for path in holding:
            tree.fs.rm(path)
    entries = 0
    for log_name in tree.log_files(name):
        path = f"{root}/{LOG}/{log_name}"
        if log_name.endswith(".json"):
            entries += _scrub_json(tree.fs, path, log_needles, dry_run)
        elif ".checkpoint" in log_name and log_name.endswith(".parquet"):
            entries += _scrub_checkpoint(tree.fs, path, log_needles, dry_run)
    return len(holding), entries


def _file_holds(fs: AbstractFileSystem, path: str, needles: _Needles) -> bool:
    with fs.open(path, "rb") as handle:
        frame = pl.from_arrow(pq.read_table(handle))
    assert isinstance(frame, pl.DataFrame)
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return bool(text) and frame.select(pl.any_horizontal(needles.mask(c) for c in text).any()).item()


def _scrub_json(fs: AbstractFileSystem, path: str, needles: _Needles, dry_run: bool) -> int:
    with fs.open(path, "rb") as handle:
        text = handle.read().decode()
    if not needles.in_text(text):
        return 0
    if not dry_run:
        lines = [
            json.dumps(_scrub_action(json.loads(line), needles), separators=(",", ":"))
            for line in text.splitlines()
            if line.strip()
        ]
        with fs.open(path, "wb") as handle:
            handle.write(("\n".join(lines) + "\n").encode())
    return 1


def _scrub_checkpoint(fs: AbstractFileSystem, path: str, needles: _Needles, dry_run: bool) -> int:
    with fs.open(path, "rb") as handle:
        table = pq.read_table(handle)
    rows = table.to_pylist()
    if not needles.in_text(json.dumps(rows, default=str)):
        return 0
    if not dry_run:
        scrubbed = pa.Table.from_pylist([_scrub_action(r, needles) for r in rows], schema=table.schema)
        with fs.open(path, "wb") as handle:
            pq.write_table(scrubbed, handle)
    return 1


def _scrub_action(action: dict[str, Any], needles: _Needles) -> dict[str, Any]:
    """One log action without the subject: a file's statistics dropped, any other text replaced."""
    for kind in ("add", "remove"):
        body = action.get(kind)
        if isinstance(body, dict) and needles.in_text(json.dumps(body, default=str)):
            for stats in ("stats", "stats_parsed"):
                if stats in body:
                    body[stats] = None
    scrubbed: dict[str, Any] = _replace(
        action, sorted(needles.substrings | {needles.plaintext}, key=len, reverse=True)
    )
    return scrubbed


def _replace(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, ERASED)
        return value
    if isinstance(value, dict):
        return {k: _replace(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, needles) for v in value]
    return value


def _erase_landing(
    config: LakegateConfig, needles: _Needles, dry_run: bool
) -> tuple[dict[str, int], list[str]]:
    """Replace the subject in archived landing files; list the waiting drops that hold it.

    Archived files were ingested already: they are kept for audit and re-ingestion, so the subject's
    plaintext is replaced there (text formats byte for byte, Parquet per string column). A drop still
    waiting is the vendor's delivery, not yet read: it is reported for its owner to withdraw.
    """
    landing = open_zone(ZoneName.LANDING, config)
    fs, root = fsspec.core.url_to_fs(landing.config.url, **landing.fsspec_options())
    if not fs.exists(root):
        return {}, []
    archived: dict[str, int] = {}
    waiting: list[str] = []
    archive_root = f"{root.rstrip('/')}/{ARCHIVE_FOLDER}/"
    for path in fs.find(root):
        relative = path.removeprefix(f"{root.rstrip('/')}/")
        if not path.startswith(archive_root):
            if _bytes_hold(fs, path, needles):
                waiting.append(relative)
            continue
        replaced = _erase_archived_file(fs, path, needles, dry_run)
        if replaced:
            archived[relative] = replaced
    return archived, waiting


def _erase_archived_file(fs: AbstractFileSystem, path: str, needles: _Needles, dry_run: bool) -> int:
    """Occurrences of the subject in one archived file, replaced unless ``dry_run``."""
    if path.endswith(".parquet"):
        with fs.open(path, "rb") as handle:
            frame = pl.read_parquet(handle)
        strings = [name for name, dtype in frame.schema.items() if dtype == pl.String]
        hits = sum(
            int(frame[name].str.count_matches(needles.plaintext, literal=True).sum() or 0) for name in strings
        )
        if hits and not dry_run:
            frame = frame.with_columns(
                pl.col(name).str.replace_all(needles.plaintext, ERASED, literal=True) for name in strings
            )
            with fs.open(path, "wb") as handle:
                frame.write_parquet(handle)
        return hits
    if not _bytes_hold(fs, path, needles):
        return 0
    if path.endswith(_COMPRESSED):  # not looked into by _bytes_hold; kept for completeness
        return 0
    data: bytes = fs.cat_file(path)
    plain = needles.plaintext.encode()
    hits = data.count(plain)
    if not dry_run:
        fs.pipe_file(path, data.replace(plain, ERASED.encode()))
    return hits


def _bytes_hold(fs: AbstractFileSystem, path: str, needles: _Needles) -> bool:
    """The file's bytes contain the plaintext (read in chunks; compressed drops are not looked into)."""
    plain = needles.plaintext.encode()
    tail = b""
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if plain in tail + chunk:
                return True
            tail = chunk[-len(plain) :]
    return False


__all__ = ["DatasetRules", "ErasureError", "ErasurePolicy", "Proof", "Step", "erase"]
