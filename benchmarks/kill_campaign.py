"""Kill campaign: SIGKILL ``lakegate run`` at seeded random moments, recover, and check the ledger each time.

Usage::

    .venv/bin/python benchmarks/kill_campaign.py --kills 50 --seed 1                   # all demo pipelines
    .venv/bin/python benchmarks/kill_campaign.py --kills 50 --seed 1 --pipeline orders
    .venv/bin/python benchmarks/kill_campaign.py --kills 6 --seed 1 --scale 0.5         # quick

Each kill gets a fresh ``LAKEGATE_HOME`` and ``DAGSTER_HOME`` under a temporary folder (``--keep`` leaves
them there for a post-mortem). Per kill it prints the pipeline, the seed, the delay after the run's start,
the phase the killed run had reached, how long recovery took and any mismatch; at the end
``kills: N, ledger mismatches: M`` and the kills per phase. Exit status 1 when any mismatch was found.
The harness itself is ``tests/crash/harness.py``; the scenarios are ``tests/crash/kill_inputs.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "crash")]
# A throwaway key: the campaign's data is generated and deleted again.
os.environ.setdefault("LAKEGATE_PII_KEY", "kill-campaign-key-not-for-production")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")

from harness import PHASES, kill_and_recover  # noqa: E402
from kill_inputs import scenarios  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pipeline", choices=["orders", "customers", "events"], action="append")
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor (default 1.0)")
    parser.add_argument("--keep", action="store_true", help="keep each kill's zones and Dagster instance")
    args = parser.parse_args()
    plans = scenarios(args.scale)
    names = args.pipeline or list(plans)
    rng = random.Random(args.seed)
    phases: Counter[tuple[str, str]] = Counter()
    mismatches = 0
    for n in range(args.kills):
        name, seed = names[n % len(names)], rng.randrange(2**31)
        root = Path(tempfile.mkdtemp(prefix=f"kill-{name}-"))
        os.environ["LAKEGATE_HOME"], os.environ["DAGSTER_HOME"] = str(root / "home"), str(root / "dagster")
        outcome = kill_and_recover(plans[name], seed, root)
        phases[name, outcome.phase] += 1
        mismatches += len(outcome.mismatches)
        print(
            f"kill {n + 1:3d} {name:9s} seed {seed:10d} after {outcome.delay:5.2f} s in {outcome.phase:13s} "
            f"recovered in {outcome.recovery_seconds:5.1f} s {'; '.join(outcome.mismatches) or 'ok'}",
            flush=True,
        )
        if outcome.mismatches or args.keep:
            print(f"    kept {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"kills: {args.kills}, ledger mismatches: {mismatches}")
    for name in names:
        counts = ", ".join(f"{phase}: {phases[name, phase]}" for phase in PHASES if phases[name, phase])
        print(f"  {name}: {counts}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
