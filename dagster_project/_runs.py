"""What ``lakegate run`` needs besides executing the job: find a pipeline's job by the name people type,
and explain a failed run — one line for a problem lakegate explained, the traceback for a bug."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from lakegate.errors import LakegateError
from lakegate.registry import suggest
from pipelines import PipelineSpecError, UnknownPipelineError
from zones import ZoneName, load_config, open_zone
from zones.errors import STORE_FAILURE, store_failed

_JOB_SUFFIX = "_job"
PIPELINE_TAG = "lakegate/pipeline"
"""Job (and so run) tag holding the pipeline's ``<domain>/<name>``."""
_ENV_NOT_SET = re.compile(r'environment variable "?(\w+)"? which is not set')


def resolve_job(definitions: dg.Definitions, requested: str) -> dg.JobDefinition:
    """The job of pipeline ``requested``: ``orders``, ``sales/orders`` or ``sales_orders``.

    Raises:
        UnknownPipelineError: no pipeline, or several domains, have that name (lists them).
    """
    pipelines = {  # "<domain>/<name>" -> job name
        job.tags[PIPELINE_TAG]: job.name
        for job in definitions.resolve_all_job_defs()
        if PIPELINE_TAG in job.tags
    }
    matches = [
        path
        for path, job_name in pipelines.items()
        if requested in (path, job_name.removesuffix(_JOB_SUFFIX), path.split("/", 1)[1])
    ]
    if len(matches) == 1:
        return definitions.resolve_job_def(pipelines[matches[0]])
    known = sorted(pipelines)
    broken = _broken(definitions, requested)
    if broken:
        raise PipelineSpecError(f"pipeline '{requested}' is not defined correctly: {broken}")
    if matches:
        raise UnknownPipelineError(
            f"pipeline name '{requested}' is taken in several domains: {', '.join(sorted(matches))}; "
            "name one as DOMAIN/NAME"
        )
    names = sorted({p.split("/", 1)[1] for p in known} | set(known))
    raise UnknownPipelineError(
        f"unknown pipeline '{requested}'{suggest(requested, names)}; pipelines: {', '.join(known)}"
    )


def tables_now(job: dg.JobDefinition) -> str:
    """One line with the row count of each of the pipeline's zone tables after the run."""
    path = job.tags[PIPELINE_TAG]
    domain, name = path.split("/")
    config = load_config()
    counts = []
    for zone in ZoneName:
        try:
            table = open_zone(zone, config).delta_table(domain, name)
            if table is not None:
                counts.append(f"{zone.value} {pl.scan_delta(table).select(pl.len()).collect().item()}")
        except OSError:  # the run is done; a store failing now only costs this summary its count
            counts.append(f"{zone.value} (store unavailable)")
    return f"{path}: tables now hold {', '.join(counts) or 'nothing yet'} row(s)"


def _broken(definitions: dg.Definitions, folder: str) -> str:
    """The problems of ``defs/<folder>/defs.yaml`` when it is loaded as a broken placeholder, else ''."""
    graph = definitions.resolve_asset_graph()
    key = dg.AssetKey(["broken_definitions", folder])
    if not graph.has(key):
        return ""
    problems = graph.get(key).metadata.get("problems")
    return " | ".join(problems.value) if problems is not None else "see lakegate check"


def _lakegate_error_names() -> set[str]:
    def walk(cls: type[BaseException]) -> Iterator[str]:
        yield cls.__name__
        for sub in cls.__subclasses__():
            yield from walk(sub)

    return set(walk(LakegateError))


def explain_failure(result: dg.ExecuteInProcessResult) -> tuple[str, str | None]:
    """``(one line, traceback)`` of a failed run; the traceback is ``None`` for a lakegate error.

    A failure lakegate raised on purpose (bad input, missing key, busy pipeline, ...) is explained by
    its own message. Anything else is a bug and keeps its whole traceback.
    """
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure and failure.step_failure_data else None
    failed_checks = list(_failed_checks(result))
    if error is None or (failed_checks and _root(error).cls_name == "DagsterAssetCheckFailedError"):
        return "blocking check(s) failed: " + ("; ".join(failed_checks) or "see the check lines above"), None
    chain = [error]
    while chain[-1].cause is not None:
        chain.append(chain[-1].cause)
    known = _lakegate_error_names()
    for link in reversed(chain):  # the root cause first
        if link.cls_name in known:
            return " ".join(link.message.strip().split(": ", 1)[-1].split()), None
    outage = _storage_outage(chain)
    if outage is not None:
        return outage, None
    tracebacks = [
        "Traceback (most recent call last):\n" + "".join(link.stack) + link.message
        for link in reversed(chain)
    ]
    causes = "\nThe above exception was the direct cause of the following exception:\n\n"
    return " ".join(chain[-1].message.split()), causes.join(tracebacks)


def _from_store_error(message: str) -> str:
    """``message`` from the error that names the failed request (deltalake's ``DeltaError: ...``)."""
    at = message.rfind("DeltaError: ")
    if at < 0:
        found = STORE_FAILURE.search(message)
        at = found.start() if found is not None else 0
    return message[at:]


def _storage_outage(chain: list[Any]) -> str | None:
    """One line for a zone store that kept failing past its client's retries (an ``OSError`` from
    deltalake/object_store or s3fs/gcsfs, e.g. 5xx, timeouts, refused connections): an outage, not a bug."""
    # deltalake's CommitFailedError too: a commit retried after its answer was lost finds its version
    # taken ("Concurrent transaction failed") — the destination treats it as storage trouble as well.
    names: set[str] = {"CommitFailedError"}
    stack: list[type[BaseException]] = [OSError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    root = next((link.message for link in reversed(chain) if link.cls_name in names), None)
    for link in chain if root is None else ():
        if not (link.cls_name.startswith("LoadClientJob") or "LoadClientJob" in link.message):
            continue
        # dlt gives up on a load job after its own retries and keeps only the last failure's text (also
        # when the step failure wraps it: PipelineStepFailed names the job's exception class).
        cause = next((m for m in re.finditer(r"\b(\w+): ", link.message) if m.group(1) in names), None)
        if cause is not None:
            root = link.message[cause.start() :]
    if root is None:  # a write's failed request: deltalake raises a plain DeltaError, not an OSError
        failed = [link.message for link in reversed(chain) if store_failed(link.message)]
        root = _from_store_error(failed[0]) if failed else None
    if root is None:
        return None
    # dlt's job text may go on with the chained exceptions' tracebacks: keep the first error only.
    root = re.split(r"The above exception|During handling of the above|Traceback \(most recent", root)[0]
    message = " ".join(re.sub(r"\x1b\[[0-9;]*m|↳", " ", root).split())[:400]
    return f"a zone's storage kept failing after retries ({message}); the next run resumes"


def _root(error: Any) -> Any:
    while error.cause is not None:
        error = error.cause
    return error


def _failed_checks(result: dg.ExecuteInProcessResult) -> Iterator[str]:
    """``asset:check (failures)`` of each failed blocking check; failures name expectations, never values."""
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        data = event.event_specific_data
        if data.passed or data.severity != dg.AssetCheckSeverity.ERROR:
            continue
        failures = data.metadata.get("failures")
        detail = ", ".join(failures.value) if failures is not None and failures.value else ""
        name = f"{data.asset_key.to_user_string()}:{data.check_name}"
        yield f"{name} ({detail})" if detail else name


def config_error_line(exc: dg.DagsterInvalidConfigError) -> str:
    """One line for a run whose resources cannot be configured (e.g. an unset environment variable)."""
    for err in exc.errors:
        if match := _ENV_NOT_SET.search(err.message):
            return f"environment variable {match[1]} is not set; export it (see README: Secrets)"
    return "; ".join(" ".join(err.message.split()) for err in exc.errors) or str(exc)
