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
        if pipeline.has_pending_data:
            log.info("%s: loading the pending packages of an earlier run first", name)
            pipeline.run()
        yield pipeline


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
