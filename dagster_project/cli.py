"""The ``lakegate`` command line: demo data, headless runs, table inspection, checks, scaffolding, UI."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import polars as pl

from dagster_project import instance
from dagster_project.cli_pii import pii_parsers
from lakegate.errors import LakegateError

log = logging.getLogger("lakegate")
DEFS_FOLDER = Path(__file__).parent / "defs"
WORKSPACE = Path(__file__).parent / "workspace.yaml"
# Dagster's console logger prints whole tracebacks; the CLI reports progress and errors itself.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


_HANDLER = logging.StreamHandler()
_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))


class CliError(LakegateError):
    """A user mistake found by the CLI itself: printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lakegate`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    _HANDLER.stream = sys.stderr  # the current stderr, also when main() runs again in one process
    if _HANDLER not in log.handlers:
        log.addHandler(_HANDLER)
    log.setLevel(logging.INFO)
    logging.captureWarnings(True)  # library deprecation chatter goes to the (silent) root logger
    try:
        return int(args.func(args) or 0)
    except LakegateError as exc:  # only problems lakegate explained; a bug keeps its traceback
        print(f"lakegate: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakegate",
        description="lakegate: ingest sources into governed Delta Lake zones, look into them, check and "
        "scaffold pipelines, serve the Dagster UI.",
        epilog="Mistakes print one line and exit 2; see README.md and docs/tutorial.md.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="write the demo drops into the landing zone")
    demo.add_argument("--rows", type=int, default=1_000, help="orders per demo drop (default 1000)")
    demo.set_defaults(func=_demo)

    run = sub.add_parser("run", help="materialize one pipeline headless, in-process")
    run.add_argument("pipeline", help="pipeline name (a folder under dagster_project/defs)")
    run.add_argument(
        "--always",
        action="store_true",
        help="start the run even when nothing is new (by default such a run is skipped in ~1 s)",
    )
    run.set_defaults(func=_run)

    table = sub.add_parser("table", help="describe a zone table (rows, schema, history)")
    table.add_argument("zone", help="landing, raw, curated, pii or quarantine")
    table.add_argument("dataset", help="DOMAIN/DATASET, e.g. sales/orders")
    when = table.add_mutually_exclusive_group()
    when.add_argument("--version", type=int, default=None, help="read the table as of this Delta version")
    when.add_argument(
        "--as-of",
        type=_timestamp,
        metavar="TIMESTAMP",
        help="read the version current at this ISO 8601 time (UTC unless it has an offset)",
    )
    table.add_argument("--json", action="store_true", help="print JSON instead of text")
    table.add_argument("--head", type=int, metavar="N", help="show the first N rows (as a table, or JSON)")
    table.add_argument(
        "--where", metavar="SQL", help='only rows matching a SQL condition, e.g. "amount > 100"'
    )
    table.add_argument("--columns", metavar="A,B", help="only these columns (comma-separated)")
    table.set_defaults(func=_table)

    retention = sub.add_parser("retention", help="plan or apply retention and table upkeep of every dataset")
    retention_sub = retention.add_subparsers(required=True, metavar="ACTION")
    for action, what in (
        ("plan", "dry run: what would be deleted, vacuumed, compacted, and why"),
        ("apply", "delete, vacuum and compact as planned (audited)"),
    ):
        step = retention_sub.add_parser(action, help=what)
        step.add_argument("--zone", action="append", metavar="ZONE", help="only this zone (repeatable)")
        step.add_argument("--json", action="store_true", help="print JSON instead of text")
        step.set_defaults(func=_retention, apply=action == "apply")

    backup = sub.add_parser("backup", help="copy every dataset's new Delta versions to the zone's backup")
    backup.add_argument("zone", help="a zone with a 'backup' setting in lakegate.yaml")
    backup.set_defaults(func=_backup)

    restore = sub.add_parser("restore", help="rebuild a zone table from its backup (audited)")
    restore.add_argument("zone", help="landing, raw, curated, pii or quarantine")
    restore.add_argument("dataset", help="DOMAIN/DATASET, e.g. sales/orders")
    restore.add_argument("--version", type=int, default=None, help="the backed-up version (default latest)")
    restore.add_argument("--to", metavar="URL", help="restore there instead of the zone location")
    restore.add_argument("--force", action="store_true", help="replace a non-empty table")
    restore.set_defaults(func=_restore)

    quarantine = sub.add_parser("quarantine", help="rejected records of a dataset, grouped by rule")
    quarantine.add_argument("dataset", help="DOMAIN/DATASET, e.g. sales/orders")
    quarantine.add_argument("--samples", type=int, default=3, help="samples per rule (default 3)")
    quarantine.add_argument("--json", action="store_true", help="print JSON instead of text")
    quarantine.set_defaults(func=_quarantine)

    check = sub.add_parser("check", help="validate every defs.yaml")
    check.add_argument("--defs", type=Path, default=DEFS_FOLDER, help="folder of <pipeline>/defs.yaml files")
    check.set_defaults(func=_check)

    discover = sub.add_parser(
        "discover", help="list every table of a pipeline's source schema as its connector's table list"
    )
    discover.add_argument("pipeline", help="pipeline folder under --defs")
    discover.add_argument(
        "--defs", type=Path, default=DEFS_FOLDER, help="folder of <pipeline>/defs.yaml files"
    )
    how = discover.add_mutually_exclusive_group()
    how.add_argument(
        "--write", action="store_true", help="write the list into defs.yaml (its comments are not kept)"
    )
    how.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the schema's tables differ from the defs.yaml's list",
    )
    discover.set_defaults(func=_discover)

    new = sub.add_parser("new", help="scaffold a new module")
    new_sub = new.add_subparsers(required=True, metavar="WHAT")
    conn = new_sub.add_parser("connector", help="scaffold a connector package with its test")
    conn.add_argument("name")
    conn.add_argument("--kind", required=True, choices=["batch", "replication", "streaming"])
    conn.add_argument(
        "--dir", type=Path, default=Path("connectors"), help="where to create it (default connectors/)"
    )
    conn.set_defaults(func=_new_connector)

    serve = sub.add_parser(
        "serve", help="serve the Dagster UI (dagster dev) with every zone from lakegate.yaml"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument(
        "--demo-stream",
        action="store_true",
        help="also start an embedded Kafka broker (Tansu) and a demo click producer for the clickstream "
        "pipeline, and switch its stream sensor on; Ctrl-C stops them with the UI",
    )
    serve.add_argument("--demo-rate", type=float, default=20.0, help="demo click events per second")
    serve.set_defaults(func=_serve)
    pii_parsers(sub)
    return parser


def _timestamp(text: str) -> datetime:
    """An ISO 8601 time for argparse (a wrong one is a usage error naming the form)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not ISO 8601, e.g. 2026-05-01T12:00:00Z") from None


def _demo(args: argparse.Namespace) -> int:
    from pipelines.demo import write_demo
    from zones import load_config

    manifest = write_demo(load_config(), rows=args.rows)
    for url in manifest.files:
        log.info("wrote %s", url)
    print(json.dumps({"files": manifest.files, "input_rows": manifest.input_rows}, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    instance.prepare()
    if not args.always and (reason := _nothing_new(args.pipeline)):
        log.info("%s: nothing new (%s); no run started (--always runs it anyway)", args.pipeline, reason)
        return 0
    import dagster as dg

    from dagster_project import _run_markers, liveness
    from dagster_project._runs import config_error_line, explain_failure, resolve_job, tables_now
    from dagster_project.definitions import defs
    from dagster_project.stopping import stop_on_terminate

    job = resolve_job(defs(), args.pipeline)

    run_id = str(uuid.uuid4())  # known before the run starts, so it can be released whatever happens
    with (
        dg.DagsterInstance.get() as dagster_instance,
        stop_on_terminate() as stop,
        _run_markers.marked(job.name, run_id),
    ):
        try:
            liveness.wait_for_pools(dagster_instance, job)
            _run_markers.forget_dead(job.name)  # their runs were just reclaimed
            log.info("running %s (run %s)", args.pipeline, run_id)
            result = job.execute_in_process(
                instance=dagster_instance,
                raise_on_error=False,
                run_config=_QUIET,
                run_id=run_id,
                tags=liveness.RunProcess.current().tags(),
            )
        except liveness.AlreadyRunningError as exc:
            raise CliError(
                f"pipeline '{args.pipeline}' is already running ({exc}); try again later"
            ) from None
        except dg.DagsterInvalidConfigError as exc:
            raise CliError(f"pipeline '{args.pipeline}' failed: {config_error_line(exc)}") from None
        except KeyboardInterrupt:
            stop.signum = stop.signum or signal.SIGINT
        finally:
            liveness.release(dagster_instance, run_id, "the run's process was stopped")
        if stop.signum:
            log.info("stopped by %s; run %s released", signal.Signals(stop.signum).name, run_id)
            return stop.exit_status
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            status = "passed" if data.passed else "FAILED"
            log.info("check %s %s: %s", data.asset_key.to_user_string(), data.check_name, status)
    if not result.success:
        reason, trace = explain_failure(result)
        if trace is not None:  # a bug, not a user mistake: show where it happened
            print(trace, file=sys.stderr)
            print(
                f"lakegate: pipeline '{args.pipeline}' crashed (run {result.run_id}): {reason}",
                file=sys.stderr,
            )
            return 1
        raise CliError(f"pipeline '{args.pipeline}' failed (run {result.run_id}): {reason}")
    log.info("%s", tables_now(job))
    log.info("run %s succeeded", result.run_id)
    return 0


def _nothing_new(requested: str) -> str | None:
    """Why a run of pipeline ``requested`` would find nothing new (no Dagster needed to tell), else
    ``None``: also when the name is unknown, ambiguous or broken (the run path then explains it)."""
    from dagster_project import _run_markers
    from pipelines.fanout import expand
    from pipelines.idle import nothing_to_do
    from pipelines.validation import read_named
    from zones import load_config

    read = read_named(DEFS_FOLDER, requested)
    if any(problems and file.parent.name == requested for file, _, problems in read):
        return None
    matches = [
        one
        for _, spec, problems in read
        if spec is not None and not problems
        for one in expand(spec)
        if requested in (one.path, one.key, one.name)
    ]
    if len(matches) != 1 or _run_markers.unfinished(f"{matches[0].key}_job"):
        return None  # an unfinished run (maybe killed) is for a real run to reclaim
    try:
        config = load_config()
    except LakegateError:
        return None
    return nothing_to_do(matches[0], config)


def _table(args: argparse.Namespace) -> int:
    from pipelines.tables import describe, rows

    if args.head is not None or args.where or args.columns:
        columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
        frame = rows(
            args.zone,
            args.dataset,
            head=args.head or 10,
            where=args.where,
            columns=columns,
            version=args.version,
            as_of=args.as_of,
        )
        if args.json:
            print(json.dumps(frame.to_dicts(), indent=2, default=str))
        else:
            shape = {"tbl_rows": -1, "tbl_cols": -1, "fmt_str_lengths": 48, "tbl_width_chars": 60_000}
            with pl.Config(**shape, tbl_hide_dataframe_shape=True):
                print(frame)
        return 0
    info = describe(args.zone, args.dataset, version=args.version, as_of=args.as_of)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(
            f"{info['zone']} {info['dataset']} @ version {info['version']}: "
            f"{info['rows']} rows  ({info['uri']})"
        )
        for name, dtype in info["schema"].items():
            print(f"  {name:32} {dtype}")
    return 0


def _retention(args: argparse.Namespace) -> int:
    from datetime import UTC
    from uuid import uuid4

    from pipelines.retention import apply, load_declared, plan
    from zones import ZoneName, load_config

    config = load_config()
    declared = load_declared(DEFS_FOLDER)
    for name in args.zone or []:
        config.zone(name)  # an unknown name fails here, listing the zones
    zones = [ZoneName(z) for z in args.zone] if args.zone else None
    planned = plan(declared, config, datetime.now(UTC), zones)
    summaries = [p.summary() for p in planned.datasets]
    if args.apply:
        run_id = f"cli-{uuid4().hex[:12]}"
        for summary, done in zip(summaries, apply(declared, config, planned, run_id), strict=True):
            summary["applied"] = done.metadata()
    if args.json:
        print(json.dumps(summaries, indent=2, default=str))
        return 0
    for s in summaries:
        line = (
            f"{s['zone']} {s['dataset']}: delete {s['delete']['rows']} rows in {s['delete']['files']} files "
            f"({s['delete']['bytes']} bytes), vacuum {s['vacuum']['files']} files ({s['vacuum']['bytes']} "
            f"bytes), compact {s['compact']['files']} files  [{s['policy']}]"
        )
        print(line)
        for held in s["held"]:
            print(f"  held {held}")
        for archived in s.get("archived", []):
            print(f"  delete archived file {archived}")
        if "applied" in s:
            print(f"  applied: {s['applied']}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from zones import ZoneName, load_config
    from zones.backup import backup_zone

    config = load_config()
    config.zone(args.zone)  # an unknown name fails here, listing the zones
    for done in backup_zone(config, ZoneName(args.zone)):
        versions = f"versions {done.versions[0]}..{done.versions[-1]}" if done.versions else "nothing new"
        print(
            f"{args.zone} {done.dataset}: {versions}, {done.files_copied} files ({done.bytes_copied} bytes)"
        )
    return 0


def _restore(args: argparse.Namespace) -> int:
    from zones import ZoneName, load_config
    from zones.backup import restore

    config = load_config()
    config.zone(args.zone)
    done = restore(
        config,
        ZoneName(args.zone),
        args.dataset,
        version=args.version,
        to=args.to,
        force=args.force,
        run_id=f"cli-{uuid.uuid4().hex[:12]}",
    )
    print(
        f"restored {args.zone} {done.dataset} backup version {done.from_version} ({done.rows} rows) to "
        f"{done.uri} as version {done.version}"
    )
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    from pipelines.tables import quarantine_summary

    summary = quarantine_summary(args.dataset, samples=args.samples)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    total = sum(group["records"] for group in summary)
    print(f"quarantine {args.dataset}: {total} record(s) in {len(summary)} rule(s)")
    for group in summary:
        print(f"\n{group['rule']}: {group['records']} record(s)")
        for sample in group["samples"]:
            where = (
                "" if sample["source"] in sample["reason"] else f"{sample['source']} @ {sample['position']}: "
            )
            print(f"  {where}{sample['reason']}")
            if sample["raw"] is not None:
                print(f"    raw: {sample['raw']!r}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from pipelines.validation import check_defs_folder

    problems, count = check_defs_folder(args.defs)
    if not count:
        raise CliError(f"no <pipeline>/defs.yaml under {args.defs}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 2  # like every user mistake (README)
    print(f"ok: {count} pipeline(s) valid")
    return 0


def _discover(args: argparse.Namespace) -> int:
    import yaml

    from pipelines import discover_tables, write_tables

    file = args.defs / args.pipeline / "defs.yaml"
    if not file.is_file():
        raise CliError(f"{file}: no such defs.yaml")
    tables = discover_tables(file)
    if args.check:
        declared = yaml.safe_load(file.read_text())["attributes"]["connector"].get("config", {})
        listed = {t if isinstance(t, str) else t.get("table") for t in declared.get("tables") or []}
        found = {t["table"] for t in tables}
        if listed == found:
            log.info("%s: the table list matches the source's %d table(s)", file, len(found))
            return 0
        print(
            f"lakegate: {file}: tables not listed: {', '.join(sorted(found - listed)) or 'none'}; "
            f"listed but gone: {', '.join(sorted(listed - found)) or 'none'}; run lakegate discover --write",
            file=sys.stderr,
        )
        return 1
    if args.write:
        write_tables(file, tables)
        log.info("%s: %d table(s) written to connector.config.tables", file, len(tables))
    else:
        print(yaml.safe_dump({"tables": tables}, sort_keys=False), end="")
    return 0


def _new_connector(args: argparse.Namespace) -> int:
    from pipelines.scaffold import scaffold_connector

    for path in scaffold_connector(args.name, args.kind, args.dir):
        print(f"created {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    instance.prepare()
    # `dagster dev` ignores TERM unless started with default signal handling (a process manager's stop).
    dagster = Path(sys.executable).with_name("dagster")  # the venv's, whether or not it is activated
    command = ["env", "--default-signal=INT,TERM", str(dagster), "dev", "-w", str(WORKSPACE)]
    command += ["-h", args.host, "-p", str(args.port)]
    log.info("Dagster UI on http://%s:%d (zones under %s)", args.host, args.port, os.environ["LAKEGATE_HOME"])
    if not args.demo_stream:
        os.execvp(command[0], command)
    return _serve_with_demo_stream(command, f"http://{args.host}:{args.port}", args.demo_rate)


def _serve_with_demo_stream(command: list[str], url: str, rate: float) -> int:
    """``dagster dev`` beside the demo broker and producer; stopping any of them stops all (no orphans)."""
    from dagster_project.demo_stream import DemoStream, start_sensor_when_ready

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # INT too: it may arrive ignored
        signal.signal(signum, interrupt)
    home = Path(os.environ["LAKEGATE_HOME"])
    with DemoStream(home / "demo-stream" / "tansu.log", rate) as stream:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stream.bootstrap}
        # Its own session: Ctrl-C reaches this process, which stops the UI, then the producer and broker.
        dagster = subprocess.Popen(command, env=env, start_new_session=True)
        stop = threading.Event()
        threading.Thread(target=start_sensor_when_ready, args=(url, stop), daemon=True).start()
        try:
            return dagster.wait()
        except KeyboardInterrupt:
            log.info("stopping the UI, the demo producer and the broker")
            return 0
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C: still clean up
                signal.signal(signum, signal.SIG_IGN)
            stop.set()
            _stop_group(dagster)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """TERM the process group of ``process`` (``dagster dev`` and its webserver, daemon and code
    servers), KILL whatever is left after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
