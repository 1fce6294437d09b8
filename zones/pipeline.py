"""The dlt pipeline that loads through the lakegate destination, configured for the write path.

Every caller (the Dagster assets, scripts, benchmarks) builds its pipeline here so they all get:
- pending packages of an interrupted run loaded before anything new is extracted (nothing is lost);
- local state never dropped (a custom destination keeps none, so restoring from it would erase cursors);
- completed load files deleted (they hold rows before PII protection; the zones are the record);
- uncompressed intermediate parquet (dlt writes it and the destination reads it right back once:
  compressing it costs more CPU than the disk it saves).
"""

from __future__ import annotations

import logging
from pathlib import Path

import dlt

from zones.destination import LoadReport, LoadTarget, lakegate_destination

log = logging.getLogger("lakegate.zones.pipeline")


def lakegate_pipeline(
    name: str, target: LoadTarget, report: LoadReport, pipelines_dir: Path | None = None
) -> dlt.Pipeline:
    """A dlt pipeline named ``name`` committing into ``target``'s zones.

    Args:
        name: dlt pipeline name; its working folder keeps the connector's state between runs.
        target: Where and how the loads are committed.
        report: Filled with the run's counts.
        pipelines_dir: dlt working folders (default ``$LAKEGATE_HOME/dlt``).
    """
    dlt.config["load.delete_completed_jobs"] = True
    dlt.config["data_writer.compression"] = "none"
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(pipelines_dir or Path(target.config.home) / "dlt"),
        destination=lakegate_destination(target, report),
        dataset_name=target.dataset.domain,
    )
    pipeline.config.restore_from_destination = False
    if pipeline.has_pending_data:
        log.info("%s: loading the pending packages of an earlier run first", name)
        pipeline.run()
    return pipeline
