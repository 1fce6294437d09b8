"""Liveness of CLI runs: a run whose process died never blocks the next run of its pipeline.

``lakegate run`` executes a job in its own process, with no daemon watching it. Each run is tagged with
the process that executes it (host, boot id, pid, pid start time). Before a new run starts, every
unfinished run of the job and every run holding one of the job's pool slots is looked at:

- provably dead (same host and boot, and the pid is gone or now belongs to another process; or the host
  rebooted): its pool slots are freed and, unless it had already finished, it is marked failed, so the
  UI shows it FAILED;
- alive on this host: the new run fails at once ("already running");
- anything else (another host, or a run started by the Dagster daemon/UI, whose worker is watched by
  Dagster's run monitoring, which also frees the slots a finished run still holds): the new run waits
  for the slots, saying so at most every few seconds, sleeping in between instead of spinning.

Two CLI runs that pass this check at the same moment still meet the pipeline's dlt lock, which refuses
the second one ("already running").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from dagster_project._process import RunProcess

log = logging.getLogger("lakegate")


class AlreadyRunningError(RuntimeError):
    """A live run of the same pipeline holds it on this host."""


def job_pools(job: dg.JobDefinition) -> set[str]:
    """The concurrency pools the job's steps claim."""
    return {node.pool for node in job.all_node_defs if node.pool}


def reclaim(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> None:
    """Free ``run``'s pool slots and mark it failed (unless it already finished)."""
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    current = instance.get_run_by_id(run.run_id)
    if current is not None and not current.is_finished:
        instance.report_run_failed(current, reason)
    log.info("reclaimed run %s: %s", run.run_id, reason)


def _holders(instance: dg.DagsterInstance, pools: Iterable[str]) -> dict[str, set[str]]:
    """Run ids holding or queued for a slot of each pool."""
    infos = instance.event_log_storage.get_concurrency_infos(list(pools))
    return {
        pool: {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}
        for pool, info in infos.items()
    }


def _clear_dead(instance: dg.DagsterInstance, job_name: str, pools: set[str]) -> dict[str, set[str]]:
    """Reclaim every provably dead run of the job or of its pools; the live holders of each pool remain.

    Raises:
        AlreadyRunningError: a run of the job is alive on this host.
    """
    # NOT_STARTED too: execute_in_process records the run before it starts it, and a kill can land between.
    unfinished = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            statuses=[
                dg.DagsterRunStatus.NOT_STARTED,
                *IN_PROGRESS_RUN_STATUSES,
                dg.DagsterRunStatus.CANCELING,
            ],
        )
    )
    holders = _holders(instance, pools)
    candidates = {run.run_id: run for run in unfinished}
    for run_id in set().union(*holders.values()) - candidates.keys():
        run = instance.get_run_by_id(run_id)
        if run is None:  # slots of a deleted run: nobody can ever free them otherwise
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        else:
            candidates[run_id] = run
    for run in candidates.values():
        process = RunProcess.of(run.tags)
        dead = None if process is None else process.is_dead()
        if dead and process is not None:
            reclaim(instance, run, f"its process {process.pid} on {process.host} is gone")
        elif dead is False and process is not None and run.job_name == job_name and not run.is_finished:
            raise AlreadyRunningError(f"run {run.run_id}, pid {process.pid}")
    return {pool: ids for pool, ids in _holders(instance, pools).items() if ids}


def wait_for_pools(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    *,
    poll_seconds: float = 1.0,
    say_every_seconds: float = 5.0,
) -> None:
    """Return once no live run holds a slot of ``job``'s pools, reclaiming dead runs on the way.

    Raises:
        AlreadyRunningError: a run of the same job is alive on this host (never waited for).
    """
    pools = job_pools(job)
    said = float("-inf")
    while held := _clear_dead(instance, job.name, pools):
        if time.monotonic() - said >= say_every_seconds:
            waits = "; ".join(
                f"pool {pool} held by run(s) {', '.join(sorted(ids))}" for pool, ids in held.items()
            )
            log.info("waiting: %s", waits)
            said = time.monotonic()
        time.sleep(poll_seconds)


def release(instance: dg.DagsterInstance, run_id: str, reason: str) -> None:
    """After a run's process stops executing it: free any slot it still holds and, if the run never
    reached a final status (interrupted before Dagster could record one), mark it canceled."""
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_canceled(run, reason)
