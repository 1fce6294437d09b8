"""The lakegate dlt destination: the only code that writes into a zone.

dlt hands over each load job as a parquet file path. For every job the destination
1. scans the job's string columns for PII by content (``pii_detection``, see :mod:`zones.pii_detection`)
   and vaults the plaintext of declared PII columns and of found spans in the ``pii`` zone (before any
   token is visible elsewhere),
2. streams the rows through the write-path rules (reject split, PII tokens, spans found by content
   tokenized, typing) into the target zone (``append``) or merges them by primary key (``merge``),
3. appends rejected rows, with rule, reason, source position and raw text, to the ``quarantine`` zone,
4. audits each commit in its zone's audit log.
Each commit carries the Delta app transaction ``(lakegate:<pipeline>:<table>:<dlt file id>, <load id>)``,
so a retried or replayed job is skipped table by table. Input rows = committed + quarantined, checked per job.

A load job that needs no rewrite — an append of a dataset without declared PII nor PII found by its scan
(which reads only the string columns; ``report`` mode adopts what it found), no reject rows, every declared
column already of its type and the lineage columns stamped at extract (:func:`lineage_stamp`) equal to
this load's — is *adopted*: dlt's load file becomes the Delta data file as it is (hard-linked or copied
into the table, added with its statistics), instead of being read back and encoded again.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import chain
from pathlib import Path
from typing import Any

import dlt
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError, DeltaError
from dlt.common.destination.exceptions import DestinationTerminalException, DestinationTransientException
from dlt.common.schema.typing import TTableSchema
from dlt.common.storages.load_package import ParsedLoadJobFileName

from lakegate import columns as col
from lakegate.scalars import text_scalar, utc_microseconds, utc_microseconds_scalar
from transforms import dtype_of
from zones import _delta, _merge
from zones._jobscan import scan_job
from zones._records import (
    READ_BATCH_ROWS,
    DatasetSpec,
    Lineage,
    concat_rejects,
    detection_columns,
    split_batch,
    stamp,
    unloadable_rows,
)
from zones._staged import SchemaChangeError, plain_type
from zones.audit import AuditRecord, read_audit, record
from zones.config import LakegateConfig, ZoneName
from zones.errors import ZoneError, store_failed
from zones.pii import PiiKeyError, Tokenizer
from zones.pii_detection import Findings, findings_metadata
from zones.positions import (
    package_transactions,
    position_app_id,
    source_positions,
    unloaded_earlier_jobs,
)
from zones.prescan import TEXT_TYPES, prescanned, text_frame
from zones.storage import TableHandles, Zone, open_zone

log = logging.getLogger("lakegate.zones.destination")


class ZoneWriteError(ZoneError, RuntimeError):
    """A load job could not be committed; the message names the dataset, the file and the cause."""


@dataclass(frozen=True)
class LoadTarget:
    """Where and how one pipeline's loads are committed.

    Attributes:
        dataset: The dataset contract (domain, name, schema, key, PII).
        zone: Target zone of the rows (``raw`` for EL/ELT, ``curated`` for ETL and ELT's second step).
        pipeline: Pipeline name (part of every idempotency key and audit record).
        run_id: Orchestrator run id stamped on every row.
        config: Zone configuration.
        merge: Merge by primary key instead of appending.
        pii_key: The key of the PII tokens (``$LAKEGATE_PII_KEY`` when ``None``); never printed.
        track_positions: The source is ordered (replication, streaming): commit the highest position of
            each source in every load with its data (see :func:`committed_positions`).
        tables: Table handles the run's other steps share with the destination (e.g. the tables its
            positions were read from), never used by two threads at once; ``None``: its own.
    """

    dataset: DatasetSpec
    zone: ZoneName
    pipeline: str
    run_id: str
    config: LakegateConfig
    merge: bool = False
    pii_key: str | None = field(default=None, repr=False)
    track_positions: bool = False
    tables: TableHandles | None = field(default=None, repr=False, compare=False)


@dataclass
class LoadReport:
    """Counts of one pipeline run, filled by the destination (thread-safe)."""

    input_rows: int = 0
    committed_rows: int = 0
    quarantined_rows: int = 0
    vaulted_values: int = 0
    replayed_jobs: int = 0
    adopted_jobs: int = 0
    """Load jobs whose load file became the Delta data file as it is (see the module doc)."""
    prescanned_jobs: int = 0
    """Load jobs not read back for PII detection: their chunks were vetted clean as they were written
    (:mod:`zones.prescan`)."""
    rules: Counter[str] = field(default_factory=Counter)
    stopped_by: ZoneError | None = None
    """Why a load job could not be committed, when it is a user's fix (dlt keeps only its text)."""
    pii_found: Counter[str] = field(default_factory=Counter)
    """PII spans found by content per ``column.recognizer`` (counts only, never a value)."""
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    """dlt steps of the run (extract, normalize, load) as (started, finished) epoch seconds."""
    ingested_window: tuple[datetime, datetime] | None = None
    """The first and last ``ingested_at`` of the load packages this run loaded: every row it wrote carries
    one of them (None before its first load job)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        """One line: rows in, committed, quarantined by rule, replayed jobs."""
        rules = ", ".join(f"{rule}: {n}" for rule, n in sorted(self.rules.items())) or "none"
        return (
            f"{self.input_rows} row(s) in, {self.committed_rows} committed, "
            f"{self.quarantined_rows} quarantined ({rules}), {self.replayed_jobs} replayed job(s) skipped"
        )

    def add(self, rules: list[str] | None = None, pii_found: Findings | None = None, **counts: int) -> None:
        """Add ``counts`` (by field name), one quarantine record per entry of ``rules`` and the PII found
        by content."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)
            self.rules.update(rules or [])
            self.pii_found.update(findings_metadata(pii_found or {}))

    def loading(self, at: datetime) -> None:
        """Widen :attr:`ingested_window` to a load package ingested at ``at``."""
        with self._lock:
            first, last = self.ingested_window or (at, at)
            self.ingested_window = (min(first, at), max(last, at))


def lakegate_destination(target: LoadTarget, report: LoadReport | None = None) -> Any:
    """A dlt destination committing every load job of ``target``'s pipeline into its zones.

    Raises:
        PiiKeyError: PII is declared and the key (``target.pii_key`` or ``$LAKEGATE_PII_KEY``) is missing
            or too short (checked before any load). A dataset without declared PII needs the key only once
            PII is found by content in it (``pii_detection: tokenize`` or ``quarantine``): that load job
            then fails, before anything of it is written, naming the key (see :meth:`_JobWriter.load`).
    """
    dataset = target.dataset
    tokenizer: Tokenizer | None = None
    missing_key: PiiKeyError | None = None
    if dataset.pii:
        tokenizer = Tokenizer.from_key(target.pii_key, f"{dataset.path}: {', '.join(dataset.pii)}")
    elif dataset.protects_found_pii:
        purpose = f"{dataset.path}: PII found by content (or set pii_detection: report or off)"
        try:
            tokenizer = Tokenizer.from_key(target.pii_key, purpose)
        except PiiKeyError as exc:
            missing_key = exc
    writer = _JobWriter(target, tokenizer, report or LoadReport(), missing_key)

    def lakegate(items: Any, table: TTableSchema) -> None:  # batch_size=0: items is the job's file path
        try:
            writer.load(Path(items), table)
        except ZoneWriteError as exc:
            raise DestinationTerminalException(str(exc)) from exc

    return dlt.destination(
        lakegate,
        batch_size=0,
        loader_file_format="parquet",
        name="lakegate",
        naming_convention="direct",
        max_parallel_load_jobs=1,  # one commit at a time per table keeps Delta versions ordered
    )


def ingested_at(load_id: str) -> datetime:
    """When a load package was created (its dlt load id is that instant): the ``INGESTED_AT`` of its rows."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=_version_of(load_id))


def lineage_stamp(run_id: str) -> Callable[[pa.Table], pa.Table]:
    """A dlt map stamping the load id, run id and ingest time on every table as it is extracted.

    With them in the load file, a clean load job can become a Delta data file as it is; the destination
    adopts a file only when they equal its own lineage (a package a later run loads is rewritten).
    """

    def stamp_table(table: pa.Table) -> pa.Table:
        load_id = str(dlt.current.load_package_state()["load_id"])
        constants = {
            col.LOAD_ID: text_scalar(load_id),
            col.RUN_ID: text_scalar(run_id),
            col.INGESTED_AT: utc_microseconds_scalar(ingested_at(load_id)),
        }
        for name, value in constants.items():
            column = pa.repeat(value, table.num_rows)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, column)
            else:
                table = table.append_column(name, column)
        return table

    return stamp_table


class _JobWriter:
    def __init__(
        self,
        target: LoadTarget,
        tokenizer: Tokenizer | None,
        report: LoadReport,
        missing_key: PiiKeyError | None = None,
    ) -> None:
        self.target = target
        self.tokenizer = tokenizer
        self.missing_key = missing_key
        self.report = report
        self.data_zone = open_zone(target.zone, target.config)
        self.quarantine = open_zone(ZoneName.QUARANTINE, target.config)
        self.pii = open_zone(ZoneName.PII, target.config)
        self.loaded_ahead: set[str] = set()
        self.tables = TableHandles() if target.tables is None else target.tables
        """The zone tables this writer has opened: each job brings them up to date before it reads a
        replay guard, and commits through them."""
        self.carried_positions = False
        """Whether the job being loaded committed to its data or quarantine table (with the package's
        positions when it is the last job)."""

    def load(self, path: Path, table: TTableSchema) -> None:
        """Commit the load job ``path``; an ordered source's earlier jobs of the package go first."""
        if path.name in self.loaded_ahead:
            return
        try:
            if self.target.track_positions:
                for earlier in unloaded_earlier_jobs(path, frozenset(self.loaded_ahead)):
                    self._load_job(earlier, table)
                    self.loaded_ahead.add(earlier.name)
            self._load_job(path, table)
        except BaseException:
            self.tables.forget()  # a failed commit may have left a handle anywhere: the retry opens afresh
            raise

    def _current(self, name: str, uri: str) -> DeltaTable | None:
        """The table at ``uri`` as of now (``None``: no table yet), see :class:`TableHandles`."""
        return self.tables.current(uri, lambda: _delta.open_table(uri, self._zone(name).delta_options()))

    def _load_job(self, path: Path, table: TTableSchema) -> None:
        load_id = dlt.current.load_package_state()["load_id"]
        job = ParsedLoadJobFileName.parse(path.name)
        spec = self._spec_for(str(table["name"]))
        # A load job's replay guard carries lastUpdated, so table upkeep expires it once it is older than
        # the time-travel window (delta.setTransactionRetentionDuration); source positions carry none and
        # never expire.
        txn = Transaction(
            f"lakegate:{self.target.pipeline}:{spec.name}:{job.file_id}",
            _version_of(load_id),
            last_updated=int(time.time() * 1000),
        )
        # pre_buffer keeps every column chunk read so far alive until the file closes (measured: the
        # whole 5M-row load file); without it memory stays at about one batch.
        parquet = pq.ParquetFile(path, pre_buffer=False)
        lineage = Lineage(
            load_id=load_id,
            run_id=self.target.run_id,
            ingested_at=ingested_at(load_id),
            positions=source_positions(parquet) if self.target.track_positions else (),
        )
        self.report.loading(lineage.ingested_at)
        uris = {
            "pii": self.pii.table_uri(spec.domain, spec.name),
            "data": self.data_zone.table_uri(spec.domain, spec.name),
            "quarantine": self.quarantine.table_uri(spec.domain, spec.name),
        }
        # Each table opened (or brought up to date) once per job: its replay guard is read here and its
        # commit below goes through the same handle. A commit of this job by anyone after this point
        # fails ours as a concurrent transaction (Delta checks app ids at commit): dlt retries the job,
        # which then finds it here.
        tables = {name: self._current(name, uri) for name, uri in uris.items()}
        todo = {name: not _delta.holds(tables[name], txn) for name in uris}
        for name, done in todo.items():
            if not done:
                self._audit_replayed(name, uris[name], txn, lineage)
        if not any(todo.values()):
            log.info("%s: load job %s already committed, skipped", spec.path, job.file_id)
            self.report.add(replayed_jobs=1)
            self._record_package_positions(spec, uris)
            return
        self.carried_positions = False
        rows = parquet.metadata.num_rows
        try:
            findings = self._scan(path, parquet, spec, uris["pii"], txn, lineage, vault=todo["pii"])
            detected = bool(findings) and spec.protects_found_pii
            if detected and self.tokenizer is None:  # never written unprotected; the next run retries
                found = ", ".join(f"{k}: {n}" for k, n in sorted(findings_metadata(findings).items()))
                key_state = str(self.missing_key).split(";")[0]  # e.g. "environment variable … is not set"
                self.report.stopped_by = PiiKeyError(
                    f"{spec.path}: PII found by content ({found}) is to be tokenized "
                    f"(pii_detection: {spec.pii_detection}), but {key_state}: set it to a secret of at "
                    "least 16 characters, or set pii_detection: report or off. Nothing of this load was "
                    "written; the next run retries it."
                )
                raise DestinationTransientException(str(self.report.stopped_by))
            if todo["data"] and not detected and self._adoptable(parquet, spec, lineage):
                committed, rejected = (
                    self._adopt(path, parquet, uris["data"], txn, lineage),
                    concat_rejects([]),
                )
            else:
                committed, rejected = self._rows(
                    parquet, spec, uris["data"], txn, lineage, write=todo["data"], detected=detected
                )
            if todo["quarantine"] and rejected.height:
                self._commit("quarantine", uris["quarantine"], _stamped(rejected, lineage), txn, lineage)
        except (OSError, CommitFailedError) as exc:  # storage trouble: dlt retries, replays are skipped
            raise DestinationTransientException(f"{spec.path}: load job {job.file_id}: {exc}") from exc
        except _DATA_ERRORS as exc:
            # A write whose request failed at the store is storage trouble all the same: quarantined as
            # unloadable, its rows would also be committed once a retry finds the store answering again.
            if isinstance(exc, DeltaError) and store_failed(str(exc)):
                raise DestinationTransientException(f"{spec.path}: load job {job.file_id}: {exc}") from exc
            if not todo["data"] or not todo["quarantine"]:
                raise ZoneWriteError(f"{spec.path}: load job {job.file_id}: {_safe(exc)}") from exc
            # Rows that cannot be stored at all (a type change, names the table refuses) are kept as
            # quarantine records pointing at their source position, so the package completes and the
            # pipeline is not blocked behind one bad drop.
            committed, rejected = 0, unloadable_rows(parquet, spec, _safe(exc))
            self._commit("quarantine", uris["quarantine"], stamp(rejected, lineage).to_arrow(), txn, lineage)
        if committed + rejected.height != rows:
            raise ZoneWriteError(
                f"{spec.path}: {rows} input rows but {committed} committed + {rejected.height} quarantined"
            )
        self.report.add(
            rules=rejected[col.RULE].to_list(),
            pii_found=findings,
            input_rows=rows,
            committed_rows=committed,
            quarantined_rows=rejected.height,
        )
        log.info(  # progress per load job; the step reports the run's totals once
            "%s: load job %s: %d row(s) committed to %s, %d quarantined",
            spec.path,
            job.file_id,
            committed,
            self.target.zone.value,
            rejected.height,
        )
        if not self.carried_positions:  # a replay, or a job that committed nothing of its own
            self._record_package_positions(spec, uris)

    def _record_package_positions(self, spec: DatasetSpec, uris: dict[str, str]) -> None:
        """The package's positions (units, curate's raw version), when this job is its last one but
        committed nothing now: a replay whose earlier commit went without them (a job retried after a
        commit whose answer was lost goes back among the new ones, so it was not the last job then).
        They go to the data table, or the quarantine table when only that exists — where readers look."""
        due = package_transactions(frozenset(self.loaded_ahead))
        if not due:
            return
        tables = [(key, self._current(key, uris[key])) for key in ("data", "quarantine")]
        existing = [(key, table) for key, table in tables if table is not None]
        if not existing:
            return  # nothing of the package was ever committed: its input is read again, once
        recorded = {
            t.app_id: max(
                (v for _, table in existing if (v := table.transaction_version(t.app_id)) is not None),
                default=-1,
            )
            for t in due
        }
        if all(recorded[t.app_id] >= t.version for t in due):
            return
        key, table = existing[0]
        version = _delta.record_transactions(uris[key], self._zone(key).delta_options(), due, table)
        log.info(
            "%s: the load package's positions recorded at version %d of %s", spec.path, version, uris[key]
        )

    def _spec_for(self, table_name: str) -> DatasetSpec:
        if table_name == self.target.dataset.name:
            return self.target.dataset
        # Child tables a dlt source may produce are stored beside the dataset, without a declared contract
        # (but scanned like it).
        return DatasetSpec(
            domain=self.target.dataset.domain,
            name=f"{self.target.dataset.name}__{table_name}",
            pii_detection=self.target.dataset.pii_detection,
        )

    def _zone(self, name: str) -> Zone:
        return {"pii": self.pii, "data": self.data_zone, "quarantine": self.quarantine}[name]

    def _scan(
        self,
        path: Path,
        parquet: pq.ParquetFile,
        spec: DatasetSpec,
        uri: str,
        txn: Transaction,
        lineage: Lineage,
        *,
        vault: bool,
    ) -> Findings:
        """Scan the job's string columns for PII by content and vault (when ``vault``) the plaintext of
        declared PII columns and of found spans in one pii-zone commit, before any token is written
        elsewhere. Reads only the columns it needs (see :mod:`zones._jobscan`)."""
        names = parquet.schema_arrow.names
        declared = [c for c in (*spec.pii, col.RAW_TEXT) if c in names] if spec.pii and self.tokenizer else []
        wanted = list(dict.fromkeys([*declared, *detection_columns(text_frame(parquet.schema_arrow), spec)]))
        if not wanted or (not declared and prescanned(path, spec, wanted)):
            if wanted:
                self.report.add(prescanned_jobs=1)
            return {}
        findings, found = scan_job(path, parquet, spec, self.tokenizer, wanted, declared)
        if vault and found is not None:
            self._vault(found, uri, txn, lineage)
        return findings

    def _vault(self, vault: pl.DataFrame, uri: str, txn: Transaction, lineage: Lineage) -> None:
        if vault.height:
            self._commit(
                "pii",
                uri,
                stamp(vault, lineage).to_arrow(),
                txn,
                lineage,
                keys=("token", "column"),
                update=False,
            )
            self.report.add(vaulted_values=vault.height)

    def _rows(
        self,
        parquet: pq.ParquetFile,
        spec: DatasetSpec,
        uri: str,
        txn: Transaction,
        lineage: Lineage,
        *,
        write: bool,
        detected: bool,
    ) -> tuple[int, pl.DataFrame]:
        rejected: list[pl.DataFrame] = []
        split_batch_ = functools.partial(split_batch, detected=detected)

        def good() -> Iterator[pl.DataFrame]:
            # Split batch n+1 (pyarrow/polars release the GIL) while the Delta writer encodes batch n.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lakegate-split") as pool:
                splits = (
                    pool.submit(split_batch_, batch, spec, self.tokenizer)
                    for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS)
                )
                ahead = next(splits, None)
                while ahead is not None:
                    split, ahead = ahead.result(), next(splits, None)
                    if split.rejected.height:
                        rejected.append(split.rejected)
                    if split.good.height:
                        yield stamp(split.good, lineage)

        if self.target.merge:  # bounded memory: one batch plus the job's keys (see zones._merge)
            split = functools.partial(split_batch, spec=spec, tokenizer=self.tokenizer, detected=detected)
            job = _merge.plan(parquet, spec, split, READ_BATCH_ROWS, lineage)
            if job.survivors:
                survivors = _merge.rows(job, spec, READ_BATCH_ROWS, lineage)
                if not write:  # already committed: only the superseded rows' records are still due
                    for _ in survivors:
                        pass
                else:  # a small job merges from memory, so Delta can skip target files by its keys
                    data = pa.RecordBatchReader.from_batches(job.schema, survivors)
                    source = data.read_all() if job.survivors <= READ_BATCH_ROWS else data
                    self._commit(
                        "data",
                        uri,
                        source,
                        txn,
                        lineage,
                        keys=spec.primary_key,
                        newer=spec.order_by[:1],
                        truncated_at=job.truncated_at,
                    )
            return job.survivors, concat_rejects(job.rejected)
        committed = 0
        frames = good()
        first = next(frames, None)
        if first is None:
            return 0, concat_rejects(rejected)
        schema = first.to_arrow().schema

        def stream() -> Iterator[pa.RecordBatch]:
            nonlocal committed
            for frame in chain([first], frames):
                committed += frame.height
                yield from frame.to_arrow().cast(schema).to_batches()

        reader = pa.RecordBatchReader.from_batches(schema, stream())
        if write:
            self._commit("data", uri, reader, txn, lineage)
        else:  # the rows are already committed; only their rejects are still to be written
            for _ in reader:
                pass
        return committed, concat_rejects(rejected)

    def _adoptable(self, parquet: pq.ParquetFile, spec: DatasetSpec, lineage: Lineage) -> bool:
        """Whether the load file is already exactly what :meth:`_rows` would write (see the module doc)."""
        if self.target.merge or spec.pii or not spec.schema or not parquet.metadata.num_rows:
            return False
        schema = parquet.schema_arrow
        if any(name in schema.names for name in (*col.REJECT_COLUMNS, col.INGEST_DATE)):
            return False
        for name, type_name in spec.schema.items():
            if name not in schema.names:
                return False
            declared = pl.Series(name, [], dtype=dtype_of(type_name)).to_arrow().type
            if not _same_type(plain_type(schema.field(name).type), declared):
                return False
        if not all(_kept_as_received(plain_type(f.type)) for f in schema):
            return False
        expected: dict[str, str | datetime] = {
            col.LOAD_ID: lineage.load_id,
            col.RUN_ID: lineage.run_id,
            col.INGESTED_AT: lineage.ingested_at,
        }
        return all(_constant(parquet, name, value) for name, value in expected.items())

    def _adopt(
        self, path: Path, parquet: pq.ParquetFile, uri: str, txn: Transaction, lineage: Lineage
    ) -> int:
        zone = self.data_zone
        schema = pa.schema(
            [
                *(f.with_type(plain_type(f.type)) for f in parquet.schema_arrow),
                pa.field(col.INGEST_DATE, pa.date32()),
            ]
        )
        done = _delta.adopt(
            uri,
            str(path),
            parquet.metadata,
            schema,
            lineage.ingested_at.date().isoformat(),
            zone.delta_options(),
            zone.fsspec_options(),
            self._txns("data", txn, lineage),
            self.tables.held(uri),
        )
        self._audit(zone, uri, done, txn, lineage, merge=False)
        self.report.add(adopted_jobs=1)
        return done.rows

    def _txns(self, zone_key: str, txn: Transaction, lineage: Lineage) -> list[Transaction]:
        txns = [txn]
        if zone_key != "pii":  # positions: the package's (curate's raw version, landing files), the rows'
            self.carried_positions = True
            txns += package_transactions(frozenset(self.loaded_ahead))
            txns += [Transaction(position_app_id(source), pos) for source, pos in lineage.positions]
        return txns

    def _audit_replayed(self, zone_key: str, uri: str, txn: Transaction, lineage: Lineage) -> None:
        """Audit an earlier commit of this job if its run died between the commit and its audit record.

        The commit and its audit record are two Delta commits; a replay skips the first, so this is the
        only chance to write the second.
        """
        zone = self._zone(zone_key)
        audit = read_audit(zone)
        if (
            audit.height
            and audit.filter(
                (pl.col("table") == uri)
                & (pl.col("app_id") == txn.app_id)
                & (pl.col("txn_version") == txn.version)
            ).height
        ):
            return
        done = _delta.committed_by(uri, zone.delta_options(), txn)
        if done is not None:
            log.info(
                "%s: auditing version %d, committed by a run that died before auditing it", uri, done.version
            )
            self._audit(zone, uri, done, txn, lineage, merge=self.target.merge or zone_key == "pii")

    def _audit(
        self, zone: Zone, uri: str, done: _delta.Committed, txn: Transaction, lineage: Lineage, *, merge: bool
    ) -> None:
        record(
            zone,
            AuditRecord(
                zone=zone.name.value,
                table=uri,
                operation="merge" if merge else "append",
                rows=done.rows,
                version=done.version,
                app_id=txn.app_id,
                txn_version=txn.version,
                pipeline=self.target.pipeline,
                run_id=self.target.run_id,
                load_id=lineage.load_id,
            ),
        )

    def _commit(
        self,
        zone_key: str,
        uri: str,
        data: pa.Table | pa.RecordBatchReader,
        txn: Transaction,
        lineage: Lineage,
        keys: tuple[str, ...] = (),
        update: bool = True,
        newer: tuple[str, ...] = (),
        truncated_at: int | None = None,
    ) -> None:
        zone = self._zone(zone_key)
        options = zone.delta_options()
        txns = self._txns(zone_key, txn, lineage)
        table = self.tables.held(uri)  # brought up to date at the start of this job (None: no table yet)
        if keys:
            done = _delta.upsert(
                uri,
                data,
                keys,
                options,
                txns,
                update=update,
                newer=newer,
                truncated_at=truncated_at,
                fs_options=zone.fsspec_options(),
                table=table,
            )
        elif isinstance(data, pa.RecordBatchReader):
            done = _delta.append_stream(
                uri, data.schema, data, options, zone.fsspec_options(), txns, table=table
            )
        else:
            done = _delta.append(uri, data, options, txns, table=table)
        self._audit(zone, uri, done, txn, lineage, merge=bool(keys))


def _stamped(frame: pl.DataFrame, lineage: Lineage) -> pa.RecordBatchReader:
    """``frame`` stamped slice by slice: a large quarantine (a backfill's superseded rows) is committed
    in bounded memory."""
    schema = stamp(frame.head(0), lineage).to_arrow().schema
    slices = range(0, frame.height, READ_BATCH_ROWS)
    batches = (
        b for i in slices for b in stamp(frame.slice(i, READ_BATCH_ROWS), lineage).to_arrow().to_batches()
    )
    return pa.RecordBatchReader.from_batches(schema, batches)


_DATA_ERRORS = (ValueError, pl.exceptions.PolarsError, pa.ArrowException, DeltaError)


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    return a == b or (a in TEXT_TYPES and b in TEXT_TYPES)


def _kept_as_received(t: pa.DataType) -> bool:
    """Types the rewrite path stores unchanged (it widens unsigned integers, for one)."""
    return (
        t in TEXT_TYPES
        or t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.bool_())
        or t == pa.date32()
        or (pa.types.is_timestamp(t) and t.unit == "us")
    )


def _constant(parquet: pq.ParquetFile, name: str, value: str | datetime) -> bool:
    """Whether every row of ``name`` holds ``value`` (text, or an instant stored to the microsecond), by the
    row groups' statistics, compared as stored: pyarrow's datetime of a statistic imports pandas."""
    if name not in parquet.schema_arrow.names:
        return False
    index = parquet.schema_arrow.names.index(name)
    stored: bytes | int
    if isinstance(value, datetime):
        if parquet.schema_arrow.field(index).type != pa.timestamp("us", "UTC"):
            return False
        stored = utc_microseconds(value)
    else:
        stored = value.encode("utf-8")
    metadata = parquet.metadata
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if (
            stats is None
            or not stats.has_min_max
            or stats.null_count
            or stats.min_raw != stored
            or stats.max_raw != stored
        ):
            return False
    return True


def _safe(exc: BaseException) -> str:
    """The reason to record: lakegate's own messages (which never hold values) or the error's type."""
    if isinstance(exc, (ZoneWriteError, SchemaChangeError)):
        return str(exc)
    return f"{type(exc).__name__} while writing (details in the run log)"


def _version_of(load_id: str) -> int:
    """dlt load ids are epoch-seconds strings; microseconds make a monotonic Delta txn version."""
    return int(Decimal(load_id) * 1_000_000)
