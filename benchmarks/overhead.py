"""Fixed-overhead benchmark: ``lakegate run`` with nothing new, and definitions of 200 pipelines.

Usage::

    .venv/bin/python benchmarks/overhead.py                  # demo of 1,000 orders, 200 pipelines
    .venv/bin/python benchmarks/overhead.py --rows 400000    # the same on a bigger dataset
    .venv/bin/python benchmarks/overhead.py --repeat 7 --pipelines 200

(a) A throwaway ``LAKEGATE_HOME`` gets the demo drops (``lakegate demo``); ``lakegate run <pipeline>``
runs once (it ingests and curates everything), then ``lakegate run <pipeline>`` with nothing new is timed
as a subprocess, median of ``--repeat`` (and ``lakegate run --always``: the Dagster run it skips).

(b) ``--pipelines`` folders are generated in a temporary defs folder (copies of the shipped ``defs.yaml``
files, each under a distinct name), then timed, each as a fresh process, median of ``--repeat``:
``lakegate check --defs DIR``; the code location loading that folder the way ``definitions.py`` loads
``defs/``, in a bare process: import, build, resolve every job and snapshot the repository (what the code
server of ``lakegate serve`` and the daemon do at each load); and ``dagster definitions validate`` of the same
location (Dagster's own command: its CLI and instance on top of the load).

Every figure is a whole process, from interpreter start to exit: what a user or a scheduler pays; each
is quoted as wall clock and as CPU time (user + system), which a busy machine inflates far less.
The last lines are ``run_nothing_new_s: X.XX`` and ``definitions_200_s: X.XX`` (targets: 2 s and 5 s).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHIPPED = ROOT / "dagster_project" / "defs"
LOCATION = """\
from pathlib import Path

from dagster_project import definitions

definitions.DEFS_FOLDER = Path({folder!r})  # the shipped code location, pointed at the generated folder
defs = definitions.defs
"""
LOAD = """\
import runpy
import sys

from dagster._core.remote_representation.external_data import RepositorySnap

definitions = runpy.run_path(sys.argv[1])["defs"]()  # import the location, build its definitions
RepositorySnap.from_def(definitions.get_repository_def())  # resolve every job and snapshot it
"""


def timed(command: list[str], env: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of ``repeat`` runs of ``command`` (each must exit 0).

    CPU time is quoted beside the wall clock: on a shared machine it moves far less with the load.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return walls, cpus


def line(what: str, times: tuple[list[float], list[float]]) -> str:
    walls, cpus = times
    runs = ", ".join(f"{t:.2f}" for t in walls)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return f"{what:40} wall {wall:6.2f} s  cpu {cpu:5.2f} s  (wall: {runs})"


def generate(folder: Path, count: int) -> None:
    """``count`` pipeline folders: the shipped ``defs.yaml`` files in turn, each renamed ``<name>_<i>``."""
    shipped = sorted(SHIPPED.glob("*/defs.yaml"))
    for i in range(count):
        document = yaml.safe_load(shipped[i % len(shipped)].read_text())
        name = f"{document['attributes']['name']}_{i:03d}"
        document["attributes"]["name"] = name
        (folder / name).mkdir()
        (folder / name / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000, help="orders per demo drop (default 1000)")
    parser.add_argument("--pipeline", default="orders", help="the demo pipeline to run (default orders)")
    parser.add_argument("--pipelines", type=int, default=200, help="generated pipelines (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lakegate-overhead-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "LAKEGATE_CONFIG"}}
        env |= {
            "LAKEGATE_HOME": str(work / "home"),
            "PYTHONPATH": str(ROOT),
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        lakegate = [str(BIN / "lakegate")]
        print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")

        # (a) a run with nothing new
        timed([*lakegate, "demo", "--rows", str(args.rows)], env, 1)
        first = timed([*lakegate, "run", args.pipeline], env, 1)
        print(line(f"first run ({args.rows} rows per drop)", first))
        nothing = timed([*lakegate, "run", args.pipeline], env, args.repeat)
        print(line("run with nothing new", nothing))
        usage = subprocess.run([*lakegate, "run", "--help"], env=env, capture_output=True, text=True).stdout
        if "--always" in usage:  # an older lakegate always starts the Dagster run
            always = timed([*lakegate, "run", args.pipeline, "--always"], env, args.repeat)
            print(line("run --always with nothing new (Dagster)", always))

        # (b) definitions of many pipelines
        defs = work / "defs"
        defs.mkdir()
        generate(defs, args.pipelines)
        check = timed([*lakegate, "check", "--defs", str(defs)], env, args.repeat)
        print(line(f"lakegate check, {args.pipelines} pipelines", check))
        location = work / "location.py"
        location.write_text(LOCATION.format(folder=str(defs)))
        code_location = timed([sys.executable, "-c", LOAD, str(location)], env, args.repeat)
        print(line(f"code location load, {args.pipelines} pipelines", code_location))
        validate = [str(BIN / "dagster"), "definitions", "validate", "-f", str(location)]
        load = timed(validate, {**env, "DAGSTER_HOME": str(work / "home" / "dagster")}, args.repeat)
        print(line(f"definitions validate, {args.pipelines} pipelines", load))
        print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
        print(f"run_nothing_new_s: {statistics.median(nothing[0]):.2f}")
        print(f"definitions_{args.pipelines}_s: {statistics.median(load[0]):.2f}")


if __name__ == "__main__":
    main()
