"""The dlt pipeline that loads through the lakegate destination, configured for the write path.

Every caller (the Dagster assets, scripts, benchmarks) builds its pipeline here so they all get:
- pending packages of an interrupted run loaded before anything new is extracted (nothing is lost);
- no telemetry sent to dlt's makers (see below);
- local state never dropped (a custom destination keeps none, so restoring from it would erase cursors);
- completed load files deleted (they hold rows before PII protection; the zones are the record);
- load files written as the zone's data files are (snappy): a clean, typed load file becomes the Delta data
  file as it is (see ``zones.destination``);
- Arrow tables of one resource whose types differ (a CSV typed as it is read, with the rows holding values
  that did not type kept as text) written to separate load files instead of failing the extract;
- the pipeline's schema read from its file only when the file changed (see :class:`_HeldSchemaStorage`);
- load-file row groups of at least 300,000 rows (dlt buffers that many rows before it writes): parquet's
  dictionary encoding gives up on a high-cardinality column after about 1 MB of dictionary, so large row
  groups cost about a third less CPU to write than 100,000-row ones (measured on the batch benchmark; it
  holds up to that many rows of one resource in memory).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dlt
from dlt.common.schema import Schema
from dlt.common.storages import LiveSchemaStorage

from zones._lease import LeaseHeld, ZoneLease
from zones.destination import LoadReport, LoadTarget, lakegate_destination
from zones.errors import ZoneError
from zones.storage import Zone, open_zone

log = logging.getLogger("lakegate.zones.pipeline")

# lakegate sends nothing anywhere: dlt's anonymous usage telemetry (a POST per pipeline step, from a
# background thread) is off unless RUNTIME__DLTHUB_TELEMETRY turns it on. It must be set before dlt first
# reads its configuration, which starts the telemetry once per process.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


@contextmanager
def lakegate_pipeline(
    name: str, target: LoadTarget, report: LoadReport, pipelines_dir: Path | None = None
) -> Iterator[dlt.Pipeline]:
    """A dlt pipeline named ``name`` committing into ``target``'s zones, held for one run.

    Only one run of a pipeline at a time, on any machine: its working folder (state, pending packages)
    is locked and its lease in the target zone held while the context is open (see
    :func:`pipeline_lock`); a second run fails at once with :class:`PipelineBusyError`.

    Args:
        name: dlt pipeline name; its working folder keeps the connector's state between runs.
        target: Where and how the loads are committed.
        report: Filled with the run's counts.
        pipelines_dir: dlt working folders (default ``$LAKEGATE_HOME/dlt``).
    """
    folder = pipelines_dir or Path(target.config.home) / "dlt"
    with pipeline_lock(name, folder, open_zone(target.zone, target.config)):
        dlt.config["load.delete_completed_jobs"] = True
        dlt.config["data_writer.compression"] = "snappy"
        dlt.config["data_writer.arrow_concat_promote_options"] = "default"
        dlt.config["data_writer.buffer_max_items"] = 300_000
        pipeline = dlt.pipeline(
            pipeline_name=name,
            pipelines_dir=str(folder),
            destination=lakegate_destination(target, report),
            dataset_name=target.dataset.domain,
        )
        pipeline.config.restore_from_destination = False
        _HeldSchemaStorage.hold(pipeline)
        if pipeline.has_pending_data:
            log.info("%s: loading the pending packages of an earlier run first", name)
            pipeline.run()
        yield pipeline


class _HeldSchemaStorage(LiveSchemaStorage):
    """dlt's schema storage for a pipeline one run holds: a schema is read again from its file only when
    the file changed since it was read or written.

    dlt's own storage reads, checks and re-applies the stored schema on every access to a schema that has
    no unsaved change (~9 times a run, as if another process could have saved one meanwhile): 6-10 ms of
    a 1,000-row curate of ``benchmarks/curate_small.py``. No other process writes the working folder of a
    held pipeline (:func:`pipeline_lock`), and dlt's own saves change the file, so the file's size and
    modification time (and the schema's unchanged hash) tell when a read would find something new.
    """

    _read: dict[str, tuple[tuple[int, int], str]]

    @classmethod
    def hold(cls, pipeline: dlt.Pipeline) -> None:
        """Make ``pipeline``'s schema storage one of these (dlt builds it; there is no setting for it). A dlt
        whose pipeline holds anything else keeps its own (``tests/zones/test_held_schema.py`` then fails)."""
        storage = getattr(pipeline, "_schema_storage", None)
        if type(storage) is LiveSchemaStorage and not storage.config.import_schema_path:
            storage.__class__ = cls
            assert isinstance(storage, cls)
            storage._read = {}

    def __getitem__(self, name: str) -> Schema:
        live = self.live_schemas.get(name)
        if live is not None and live.is_modified:
            return super().__getitem__(name)  # the live schema, with its unsaved changes
        stamp = self._stamp(name)
        if live is not None and self._read.get(name) == (stamp, live.stored_version_hash):
            return live
        schema = super().__getitem__(name)
        if stamp is not None:
            self._read[name] = (stamp, schema.stored_version_hash)
        return schema

    def _stamp(self, name: str) -> tuple[int, int] | None:
        """The schema file's modification time and size (``None``: no file)."""
        try:
            found = os.stat(self.storage.make_full_path(self._file_name_in_store(name, "json")))
        except FileNotFoundError:
            return None
        return found.st_mtime_ns, found.st_size


@contextmanager
def pipeline_lock(name: str, folder: Path, zone: Zone | None = None) -> Iterator[None]:
    """Hold dlt pipeline ``name``'s run guard (what a run holds), or fail at once.

    Two guards: the working-folder lock (one host: the kernel drops it with the process) and, with
    ``zone``, the pipeline's lease in that zone (every host sharing the zones: a put-if-absent object
    renewed while held, taken over once expired — see ``zones._lease``). Table upkeep takes the same
    guards as the runs of the dataset, so it never races them.

    Raises:
        PipelineBusyError: a run holds it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineBusyError(
                f"pipeline '{name}' is already running (lock {lock.name}); try again later"
            ) from None
        if zone is None:
            yield
            return
        lease = ZoneLease(zone.config.url, zone.fsspec_options(), name)
        try:
            lease.acquire()
        except LeaseHeld as held:
            until = datetime.fromtimestamp(held.expires, UTC).strftime("%H:%M:%S UTC")
            raise PipelineBusyError(
                f"pipeline '{name}' is already running (lease in zone {zone.name} held by {held.owner}, "
                f"renewed until {until}); try again later"
            ) from None
        try:
            yield
        finally:
            lease.release()


class PipelineBusyError(ZoneError, RuntimeError):
    """Another run of the same pipeline holds its working folder."""
