"""``lakegate`` commands on PII rights and findings: ``reveal``, ``erase``, ``pii rotate-key`` and
``pii suggest`` (issue 13). Registered by :mod:`dagster_project.cli`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lakegate.errors import LakegateError

if TYPE_CHECKING:
    from pipelines import PipelineSpec

log = logging.getLogger("lakegate")
DEFS_FOLDER = Path(__file__).parent / "defs"
SAMPLE_ROWS = 100_000
"""Rows of the ingest zone ``pii suggest --scan`` reads (a sample: the table's first rows)."""


class SuggestError(LakegateError):
    """``pii suggest`` cannot name one pipeline: printed as one line."""


def pii_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``reveal``, ``erase`` and ``pii rotate-key|suggest`` to the ``lakegate`` parser."""
    acting = argparse.ArgumentParser(add_help=False)
    acting.add_argument(
        "--as",
        dest="principal",
        metavar="NAME",
        help="who is acting (default $LAKEGATE_PRINCIPAL, else the OS user)",
    )
    reveal = sub.add_parser(
        "reveal", parents=[acting], help="print the plaintext behind a token (pii role only; audited)"
    )
    reveal.add_argument("dataset", help="DOMAIN/DATASET, e.g. crm/customers")
    reveal.add_argument("--token", required=True, help="the tok_... value")
    reveal.add_argument("--reason", required=True, help="why the plaintext is needed (audited)")
    reveal.set_defaults(func=_reveal)

    erase = sub.add_parser(
        "erase", parents=[acting], help="erase one subject from every zone, history and backup (audited)"
    )
    erase.add_argument("--subject", required=True, help="the value to erase ('-': read it from stdin)")
    erase.add_argument("--dataset", action="append", metavar="D/N", help="only this dataset (repeatable)")
    erase.add_argument("--dry-run", action="store_true", help="show where it is and what would be done")
    erase.add_argument("--reason", default="right to erasure request", help="why (audited)")
    erase.add_argument("--json", action="store_true", help="print the proof as JSON")
    erase.set_defaults(func=_erase)

    pii = sub.add_parser("pii", help="PII key management and suggestions")
    pii_sub = pii.add_subparsers(required=True, metavar="ACTION")
    rotate = pii_sub.add_parser(
        "rotate-key",
        parents=[acting],
        help="re-tokenize every zone and vault from $LAKEGATE_PII_KEY to $LAKEGATE_PII_KEY_NEW (resumable)",
    )
    rotate.set_defaults(func=_rotate_key)
    suggest = pii_sub.add_parser(
        "suggest",
        help="propose the pii: block for the PII found by content (the last run's counts, or a scan of raw)",
    )
    suggest.add_argument("pipeline", help="pipeline name (a folder under dagster_project/defs)")
    suggest.add_argument(
        "--scan",
        action="store_true",
        help="scan a sample of the ingest zone even when the last run left counts",
    )
    suggest.add_argument(
        "--rows", type=int, default=SAMPLE_ROWS, help=f"rows scanned (default {SAMPLE_ROWS})"
    )
    suggest.set_defaults(func=_suggest)


def _reveal(args: argparse.Namespace) -> int:
    from zones import load_config
    from zones.pii_rights import principal, reveal

    print(reveal(load_config(), args.dataset, args.token, args.reason, principal(args.principal)))
    return 0


def _erase(args: argparse.Namespace) -> int:
    from pipelines.retention import load_declared
    from zones import load_config
    from zones.erasure import DatasetRules, erase
    from zones.pii import Encryptor, PiiMethod, Tokenizer
    from zones.pii_rights import principal
    from zones.rotation import OLD_KEY_ENV

    subject = sys.stdin.readline().rstrip("\n") if args.subject == "-" else args.subject
    tokenizers = [Tokenizer.from_key(None, "lakegate erase")]
    if os.environ.get(OLD_KEY_ENV):
        tokenizers.append(Tokenizer.from_key(os.environ[OLD_KEY_ENV], f"lakegate erase ({OLD_KEY_ENV})"))
    declared = [d.spec for d in load_declared(DEFS_FOLDER)]
    rules = {spec.path: DatasetRules(spec.erasure, tuple(spec.pii)) for spec in declared}
    encrypted = any(m is PiiMethod.ENCRYPT for spec in declared for m in spec.pii.values())
    encryptor = Encryptor.from_key(None, "lakegate erase (encrypted columns)") if encrypted else None
    proof = erase(
        load_config(),
        subject,
        tokenizers=tokenizers,
        rules=rules,
        who=principal(args.principal),
        reason=args.reason,
        only=args.dataset or (),
        dry_run=args.dry_run,
        run_id=f"cli-{uuid.uuid4().hex[:12]}",
        encryptor=encryptor,
    )
    if args.json:
        print(json.dumps(proof.as_dict(), indent=2))
    else:
        print("\n".join(proof.lines()))
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from zones import load_config
    from zones.pii import Tokenizer
    from zones.pii_rights import principal
    from zones.rotation import NEW_KEY_ENV, rotate_key

    old = Tokenizer.from_key(None, "lakegate pii rotate-key (the current key)")
    new = Tokenizer.from_key(os.environ.get(NEW_KEY_ENV, ""), f"lakegate pii rotate-key ({NEW_KEY_ENV})")
    for done in rotate_key(load_config(), old, new, principal(args.principal)):
        line = f"{done.zone} {done.dataset}: {done.status}"
        if done.status == "rotated":
            line += f" ({done.tokens} token(s) re-keyed)"
        if done.unmapped_hashes:
            line += f"; {done.unmapped_hashes} keyed hash(es) in no vault left under the old key"
        log.info("%s", line)
        print(line)
    print(f"rotation complete: set {NEW_KEY_ENV}'s value as LAKEGATE_PII_KEY")
    return 0


def _suggest(args: argparse.Namespace) -> int:
    from pipelines.fanout import expand
    from pipelines.validation import read_named

    specs = [
        one
        for _, spec, problems in read_named(DEFS_FOLDER, args.pipeline)
        if spec is not None and not problems
        for one in expand(spec)
        if args.pipeline in (one.path, one.key, one.name)
    ]
    if len(specs) != 1:
        raise SuggestError(
            f"pipeline '{args.pipeline}': no single valid pipeline of that name; see lakegate check"
        )
    spec = specs[0]
    counts, origin = ({}, "") if args.scan else _last_run_counts(spec)
    if not counts:
        counts, origin = _raw_sample_counts(spec, args.rows)
    print(suggestion(spec.pii, counts, origin), end="")
    return 0


def _last_run_counts(spec: PipelineSpec) -> tuple[dict[str, int], str]:
    """``column.recognizer -> spans`` of the last ingest run's materialization (Dagster event log)."""
    import dagster as dg

    from dagster_project import instance

    instance.prepare()
    key = dg.AssetKey([spec.domain, spec.name, spec.ingest_zone.value])
    with dg.DagsterInstance.get() as dagster_instance:
        event = dagster_instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event is not None else None
    found = materialization.metadata.get("pii_found") if materialization is not None else None
    data = getattr(found, "data", None)
    if event is None or not isinstance(data, dict) or not data:
        return {}, ""
    return {str(k): int(v) for k, v in data.items()}, f"the last run ({event.run_id})"


def _raw_sample_counts(spec: PipelineSpec, rows: int) -> tuple[dict[str, int], str]:
    """``column.recognizer -> spans`` in the first ``rows`` rows of the pipeline's ingest zone."""
    import polars as pl

    from zones import load_config, open_zone
    from zones._records import detection_columns
    from zones.pii_detection import PiiDetection, findings_metadata, scan

    zone = open_zone(spec.ingest_zone, load_config())
    table = zone.delta_table(spec.domain, spec.name)
    if table is None:
        return {}, f"{spec.ingest_zone.value} (no table yet: run the pipeline first)"
    frame = pl.scan_delta(table).head(rows).collect()
    dataset = spec.dataset()
    if dataset.pii_detection is PiiDetection.OFF:  # still worth a look: that is what suggest is for
        dataset = replace(dataset, pii_detection=PiiDetection.REPORT)
    found = scan(frame, detection_columns(frame, dataset))
    return findings_metadata(found), f"a scan of {frame.height} row(s) of {spec.ingest_zone.value}"


def suggestion(declared: dict[str, object], counts: dict[str, int], origin: str) -> str:
    """The ``pii:`` block (YAML) for the columns where PII was found, with what was found as comments;
    already-declared columns are kept as declared. Counts only, never a value."""
    per_column: dict[str, Counter[str]] = {}
    for name, n in counts.items():
        column, _, recognizer = name.rpartition(".")
        per_column.setdefault(column, Counter())[recognizer] += n
    lines = [f"# PII found by content in {origin or 'nothing scanned'}:"]
    if not per_column:
        lines.append("#   nothing found outside the declared pii: columns")
    for column, found in sorted(per_column.items()):
        lines.append(f"#   {column}: " + ", ".join(f"{r} {n}" for r, n in sorted(found.items())))
    lines += [
        "# A column holding only PII: declare it (tokenize, mask, hash, redact, generalize or encrypt).",
        "# Free text with PII inside: keep pii_detection: tokenize instead (only the spans are tokenized).",
    ]
    kept = {c: str(getattr(m, "value", m)) for c, m in declared.items()}
    block = {**dict.fromkeys(per_column, "tokenize"), **kept}
    if block:
        lines.append("pii:")
        lines += [f"  {column}: {method}" for column, method in block.items()]
    return "\n".join(lines) + "\n"
