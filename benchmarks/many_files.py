"""Many small files: what resuming from the zone costs per run, in the landing zone and elsewhere.

Usage::

    .venv/bin/python benchmarks/many_files.py --files 2000

Into a fresh ``LAKEGATE_HOME`` (a temporary folder), ``--files`` small CSV files are dropped twice: into the
landing zone (``lakegate://landing/...``: committed files are archived) and into a folder outside it (files
stay where they are). For each, the script times the first run (ingests every file), then a rerun with
dlt's working folder deleted (a fresh machine: nothing new), then a run after one new drop. Landing reruns
look up only what waits in the drop folder; outside it every matched file is looked up in the zone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def _drop(folder: Path, first: int, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        (folder / f"part_{i:06d}.csv").write_text(f"id,amount\n{i},{i % 97}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lakegate-many-files-"))
    os.environ["LAKEGATE_HOME"] = str(root / "home")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    from pipelines import PipelineSpec, ingest
    from zones import ZoneName, load_config, open_zone

    config = load_config()
    landing = Path(open_zone(ZoneName.LANDING, config).config.url.removeprefix("file://"))
    elsewhere = root / "shared"
    for where, folder, url in (
        ("landing", landing / "bench" / "landed", "lakegate://landing/bench/landed/*.csv"),
        ("elsewhere", elsewhere, f"{elsewhere.as_uri()}/*.csv"),
    ):
        spec = PipelineSpec.model_validate(
            {
                "name": f"many_{where}",
                "domain": "bench",
                "pattern": "EL",
                "connector": {"type": "files", "config": {"url": url}},
            }
        )
        _drop(folder, 0, args.files)
        timings = []
        for label, new in (("first run", 0), ("rerun, fresh machine", 0), ("one new file", 1)):
            _drop(folder, args.files, new)
            shutil.rmtree(Path(config.home) / "dlt", ignore_errors=True)
            start = time.perf_counter()
            report = ingest(spec, run_id=f"{where}-{label}")
            timings.append((label, time.perf_counter() - start, report.input_rows))
        for label, seconds, rows in timings:
            print(f"{where:9s} {args.files} files, {label:22s} {seconds:7.2f} s  {rows} row(s) in")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
