"""What the Delta log says about the commits after a version: the data files appended since then.

A consumer that reads "what was appended since version N" (the curate step reads raw this way) must not
diff snapshots: compaction and retention deletes replace files without adding rows, so a snapshot diff
would hand over compacted old rows as new. The commits themselves say which files an append added.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import fsspec
from deltalake import DeltaTable

# Operations that add new rows to an append-only table; OPTIMIZE, DELETE and the rest only move rows.
_APPENDS = {"WRITE", "CREATE TABLE"}


def appended_since(table: DeltaTable, version: int, fs_options: dict[str, Any]) -> list[str]:
    """URIs of the data files appended after ``version`` that the current snapshot still holds, in the
    order they were committed (``-1``: since the table was created).

    Reads the commit files ``version+1 .. table.version()``; lakegate's upkeep never cleans log entries
    a consumer has not applied yet, so they are there.
    """
    fs, root = fsspec.core.url_to_fs(table.table_uri, **fs_options)
    root = root.rstrip("/")  # gcsfs keeps the table URI's trailing slash, s3fs and local paths do not
    added: dict[str, int] = {}  # path -> order of its commit and of its add action in the commit
    for v in range(version + 1, table.version() + 1):
        with fs.open(f"{root}/_delta_log/{v:020d}.json", "r") as handle:
            actions = [json.loads(line) for line in handle if line.strip()]
        operation = next((a["commitInfo"].get("operation") for a in actions if "commitInfo" in a), None)
        if operation in _APPENDS:
            for a in actions:
                if "add" in a and a["add"].get("dataChange"):
                    added.setdefault(unquote(a["add"]["path"]), len(added))
    # file_uris() spells local tables as plain paths and object stores as URLs: cut at the table root.
    anchor = root + "/"
    held = {unquote(uri.split(anchor, 1)[-1]): uri for uri in table.file_uris()}
    return [held[path] for path in sorted(added, key=added.__getitem__) if path in held]
