"""Backup jobs: one per zone with a ``backup`` setting, run by a schedule (daily unless the setting's
``schedule`` says otherwise). Dagster's view of :func:`zones.backup.backup_zone`."""

import dagster as dg

from dagster_project.resources import ZONES, ZonesResource
from zones import LakegateConfig, ZoneConfigError, ZoneName, backup_zone


def backup_job(zone: ZoneName) -> dg.JobDefinition:
    """``lakegate_backup_<zone>_job``: copy every dataset's new Delta versions to the zone's backup."""

    @dg.op(name=f"backup_{zone.value}", required_resource_keys={ZONES})
    def backup(context: dg.OpExecutionContext) -> dg.Output[int]:
        done = backup_zone(getattr(context.resources, ZONES).load(), zone)
        for item in done:
            context.log.info(
                f"{zone.value}/{item.dataset}: {item.files_copied} files, versions {item.versions}"
            )
        copied = sum(item.files_copied for item in done)
        metadata = {"datasets": len(done), "bytes_copied": sum(item.bytes_copied for item in done)}
        return dg.Output(copied, metadata={"files_copied": copied, **metadata})

    @dg.job(name=f"lakegate_backup_{zone.value}_job", description=f"Back up the {zone.value} zone")
    def job() -> None:
        backup()

    return job


def backup_definitions(zones: ZonesResource) -> dg.Definitions:
    """A backup job and its schedule for every zone with a backup; none while the zone config is broken
    (every run then reports the config error itself)."""
    try:
        config: LakegateConfig = zones.load()
    except ZoneConfigError:
        return dg.Definitions()
    backups = {name: zone.backup for name, zone in config.zones.items() if zone.backup is not None}
    jobs = {name: backup_job(name) for name in backups}
    schedules = [
        dg.ScheduleDefinition(
            name=f"backup_{name.value}_schedule",
            job=job,
            cron_schedule=backups[name].schedule,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for name, job in jobs.items()
    ]
    return dg.Definitions(jobs=list(jobs.values()), schedules=schedules)
