"""Retention of every pipeline's datasets: policies from ``lakegate.yaml`` and ``defs.yaml``, checked at
load time, planned and applied by :mod:`zones.retention` (``lakegate retention plan|apply``, the
maintenance job).

A pipeline's ``retention:`` overrides its zones' defaults; ``landing`` applies to the files a ``files``
pipeline archived after reading them from the landing zone. Legal holds must name a dataset some pipeline
declares. Raw of an ELT pipeline is upkept (compacted, checkpointed, log cleaned) only when curate has
applied every append (and the history, with ``history: scd2``), and a dataset is maintained while holding
its pipeline's run locks, so upkeep never races an ingest, a curate or a history run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipelines._flow import landing_archive, raw_applied_version
from pipelines._history import history_applied_version, history_dataset
from pipelines.errors import PipelineSpecError
from pipelines.fanout import expand
from pipelines.spec import Pattern, PipelineSpec
from pipelines.validation import load_spec
from zones import (
    Applied,
    DatasetPlan,
    LakegateConfig,
    Policy,
    ZoneName,
    appended_since,
    apply_dataset,
    open_zone,
    parse_duration,
    pipeline_lock,
    plan_dataset,
    retention_conflict,
)

STEPS = ("ingest", "curate", "history")


@dataclass(frozen=True)
class Declared:
    """A pipeline spec and the ``defs.yaml`` it came from (named in load-time errors)."""

    file: Path
    spec: PipelineSpec


def load_declared(folder: Path) -> list[Declared]:
    """Every valid ``<pipeline>/defs.yaml`` under ``folder`` (broken ones are ``lakegate check``'s job)."""
    declared = []
    for file in sorted(folder.glob("*/defs.yaml")):
        try:
            declared += [Declared(file, one) for one in expand(load_spec(file))]
        except PipelineSpecError:
            continue
    return declared


def zones_of(spec: PipelineSpec, config: LakegateConfig) -> list[ZoneName]:
    """The zones holding the pipeline's dataset (landing: when it archives the files it read there)."""
    zones = [ZoneName.LANDING] if landing_archive(spec, config) is not None else []
    zones += [] if spec.pattern is Pattern.ETL else [ZoneName.RAW]
    zones += [] if spec.pattern is Pattern.EL else [ZoneName.CURATED]
    zones += [ZoneName.PII] if spec.pii else []
    return [*zones, ZoneName.QUARANTINE]


def policies(declared: Sequence[Declared], config: LakegateConfig) -> list[Policy]:
    """The policy of each dataset in each of its zones, checked.

    Raises:
        PipelineSpecError: one line naming the file and field: a retention the zone cannot honour
            (shorter than its time-travel window or its ``min_retention``), or a legal hold on a dataset
            no pipeline declares.
    """
    known = {d.spec.path for d in declared}
    for index, hold in enumerate(config.holds):
        if hold.dataset not in known:
            raise PipelineSpecError(
                f"{config.source}: holds.{index}.dataset: '{hold.dataset}' is not a dataset of any pipeline; "
                f"datasets: {', '.join(sorted(known)) or 'none'}"
            )
    found = []
    for item in declared:
        spec = item.spec
        for zone in zones_of(spec, config):
            zone_config = config.zone(zone)
            own = spec.retention.of(zone)
            retention: timedelta | None
            if own is not None:
                retention = parse_duration(own)
                where = f"defs.yaml retention.{zone.value}"
                try:
                    retention_conflict(zone_config, retention)
                except ValueError as exc:
                    field = f"attributes.retention.{zone.value}"
                    raise PipelineSpecError(f"{item.file}: {field}: {exc}") from None
            else:
                retention = zone_config.retention_period  # checked when lakegate.yaml was loaded
                where = f"lakegate.yaml zones.{zone.value}.retention"
            found.append(
                Policy(
                    zone=zone,
                    domain=spec.domain,
                    dataset=spec.name,
                    retention=retention,
                    time_travel=zone_config.time_travel_window,
                    declared_in=where if retention is not None else "no retention declared",
                    column=None if zone is ZoneName.LANDING else spec.retention.column,
                    upkeep_waits=_upkeep_waits(spec, zone, config),
                )
            )
        if spec.history is not None:
            # Versions are history: never expired by ingest date (an open version may be years old);
            # vacuum and upkeep run as for every table.
            found.append(
                Policy(
                    zone=ZoneName.CURATED,
                    domain=spec.domain,
                    dataset=history_dataset(spec).name,
                    retention=None,
                    time_travel=config.zone(ZoneName.CURATED).time_travel_window,
                    declared_in="defs.yaml history: scd2 keeps every version",
                )
            )
    return found


def _upkeep_waits(spec: PipelineSpec, zone: ZoneName, config: LakegateConfig) -> str | None:
    """Why raw upkeep must wait: curate (and the history) read raw by "files appended since the applied
    version", so compaction and log cleanup wait until they have applied every append."""
    if zone is not ZoneName.RAW or spec.pattern is not Pattern.ELT:
        return None
    table = open_zone(zone, config).delta_table(spec.domain, spec.name)
    if table is None:
        return None
    applied = {"curate": raw_applied_version(spec, config)}
    if spec.history is not None:  # the history reads raw's appends too
        applied["history"] = history_applied_version(spec, config)
    for step, done in applied.items():
        if done is None or appended_since(table, done, open_zone(zone, config).fsspec_options()):
            return (
                f"{step} has not applied every raw append yet (applied version {done}); upkeep waits for it"
            )
    return None


@dataclass(frozen=True)
class RetentionPlan:
    """The plan of every dataset as of ``now`` (a dry run)."""

    now: datetime
    datasets: list[DatasetPlan]

    @property
    def expired(self) -> list[DatasetPlan]:
        """Datasets where something left its retention or time-travel window."""
        return [p for p in self.datasets if p.expired]


def plan(
    declared: Sequence[Declared],
    config: LakegateConfig,
    now: datetime,
    zones: Sequence[ZoneName] | None = None,
) -> RetentionPlan:
    """Plan retention of every dataset (optionally only in ``zones``) as of ``now``."""
    planned = []
    for policy in policies(declared, config):
        if zones is not None and policy.zone not in zones:
            continue
        found = plan_dataset(config, policy, config.holds, now)
        if found is not None:
            planned.append(found)
    return RetentionPlan(now=now, datasets=planned)


def apply(
    declared: Sequence[Declared], config: LakegateConfig, planned: RetentionPlan, run_id: str
) -> list[Applied]:
    """Apply ``planned``, each dataset under its pipeline's run locks.

    Raises:
        PipelineBusyError: an ingest or curate run of the dataset holds its lock (try again later).
    """
    specs = {d.spec.path: d.spec for d in declared}
    specs |= {f"{d.spec.domain}/{history_dataset(d.spec).name}": d.spec for d in declared if d.spec.history}
    done = []
    for item in planned.datasets:
        with run_locks(specs[item.policy.path], config):
            done.append(apply_dataset(config, item, run_id))
    return done


@contextmanager
def run_locks(spec: PipelineSpec, config: LakegateConfig) -> Iterator[None]:
    """Hold the working-folder locks the pipeline's ingest and curate runs take."""
    with ExitStack() as stack:
        for step in STEPS:
            # The lease sits in the zone the step writes (as ``lakegate_pipeline`` takes it): upkeep on one
            # machine never races a run on another.
            zone = open_zone(spec.ingest_zone if step == "ingest" else ZoneName.CURATED, config)
            stack.enter_context(pipeline_lock(f"lakegate_{spec.key}_{step}", Path(config.home) / "dlt", zone))
        yield
