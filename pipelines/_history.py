"""SCD2 history of an ELT pipeline (``history: scd2``): beside the current-state table, curated keeps
``<dataset>_history`` with one row per version of each key (``valid_from``, ``valid_to``, ``is_current``),
maintained from raw's change rows by :func:`transforms.scd2.scd2`.

Each run takes the raw rows the history has not applied yet plus the history's current versions (so a
change or delete in the batch closes them, and a truncate closes all), and merges the result by
``primary_key + _lakegate_position``: closed versions are updated, new ones inserted. The raw version it
reaches travels in the same Delta commit, so a replay or a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import replace

import dlt
import polars as pl
from dlt.extract import DltSource

from connectors import plain_strings
from lakegate.columns import LINEAGE_COLUMNS, POSITION
from pipelines._flow import CurateInput, raw_app_id, raw_since
from pipelines.spec import PipelineSpec
from transforms import TransformContext
from transforms.scd2 import IS_CURRENT, VALID_FROM, VALID_TO, scd2
from zones import (
    DatasetSpec,
    LakegateConfig,
    LoadTarget,
    ZoneName,
    committed_position,
    open_zone,
    record_position,
)

HISTORY_SUFFIX = "_history"


def history_dataset(spec: PipelineSpec) -> DatasetSpec:
    """``<domain>/<name>_history`` in curated, one row per (key, position)."""
    return replace(
        spec.dataset(), name=f"{spec.name}{HISTORY_SUFFIX}", primary_key=(*spec.primary_key, POSITION), pii={}
    )


def history_applied_version(spec: PipelineSpec, config: LakegateConfig) -> int | None:
    """The raw version the history applied last (``None``: never)."""
    return committed_position(open_zone(ZoneName.CURATED, config), history_dataset(spec), raw_app_id(spec))


def pending_history(spec: PipelineSpec, config: LakegateConfig) -> CurateInput | None:
    """Raw rows committed since the raw version the history applied last; ``None`` when up to date."""
    done = history_applied_version(spec, config)
    raw = open_zone(ZoneName.RAW, config).delta_table(spec.domain, spec.name)
    if raw is None or (done is not None and done >= raw.version()):
        return None
    return raw_since(spec, config, done)


def history_source(
    spec: PipelineSpec, pending: CurateInput, changes: list[pl.DataFrame], config: LakegateConfig
) -> DltSource:
    """The versions ``changes`` (``pending``'s raw rows, held in memory) open or close, with the raw
    version they reach (recorded on commit)."""
    dataset = history_dataset(spec)
    stored = open_zone(ZoneName.CURATED, config).delta_table(dataset.domain, dataset.name)
    frames = list(changes)
    if stored is not None:
        current = pl.scan_delta(stored).filter(pl.col(IS_CURRENT)).drop(LINEAGE_COLUMNS, strict=False)
        frames.insert(0, current.collect())
    versions_in = pl.concat(frames, how="diagonal_relaxed")
    ctx = TransformContext(primary_key=tuple(spec.primary_key))
    table = plain_strings(scd2(versions_in.lazy(), ctx).collect().to_arrow())

    @dlt.resource(name=dataset.name)
    def versions() -> object:
        record_position(pending.app_id, pending.raw_version)
        yield table

    return dlt.source(name=dataset.name)(lambda: versions)()


def history_target(spec: PipelineSpec, run_id: str, config: LakegateConfig) -> LoadTarget:
    """Curated ``<name>_history``, merged by key and position."""
    return LoadTarget(
        dataset=history_dataset(spec),
        zone=ZoneName.CURATED,
        pipeline=f"{spec.name}{HISTORY_SUFFIX}",
        run_id=run_id,
        config=config,
        merge=True,
    )


def history_counts(spec: PipelineSpec, config: LakegateConfig) -> dict[str, int]:
    """What the history's consistency check holds: its versions, and two counts that must be 0 — keys
    with more than one open version, and versions that end before they start."""
    dataset = history_dataset(spec)
    stored = open_zone(ZoneName.CURATED, config).delta_table(dataset.domain, dataset.name)
    if stored is None:
        return {"versions": 0, "keys_with_several_open_versions": 0, "versions_ending_before_start": 0}
    lf = pl.scan_delta(stored)
    several = lf.filter(pl.col(IS_CURRENT)).group_by(spec.primary_key).len().filter(pl.col("len") > 1)
    backwards = lf.filter(pl.col(VALID_TO) < pl.col(VALID_FROM))
    return {
        "versions": int(lf.select(pl.len()).collect().item()),
        "keys_with_several_open_versions": several.select(pl.len()).collect().item(),
        "versions_ending_before_start": backwards.select(pl.len()).collect().item(),
    }
