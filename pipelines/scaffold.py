"""``lakegate new connector NAME --kind K``: scaffold a connector package that works from the first run.

The package follows the connector layout (dlt verified-sources style): ``__init__.py`` registering an
example connector built on the contract, a strict ``config.py``, a ``README.md`` operations manual and
``tests/`` running the shared conformance kit. The example yields a small Arrow table and keeps its
cursor in the dlt resource state, so its conformance tests pass straight away; the engineer then
replaces ``_fetch`` with reads from the real source.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from connectors import Kind, connector_names
from pipelines.errors import PipelineError

__all__ = ["ScaffoldError", "scaffold_connector"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_POSITION_MEANING = {
    Kind.BATCH: "record number",
    Kind.REPLICATION: "log sequence number (LSN)",
    Kind.STREAMING: "offset",
}


class ScaffoldError(PipelineError, ValueError):
    """The scaffold cannot be created; the message is one line naming the problem and the fix."""


_INIT = Template('''\
"""The ``$name`` connector ($kind), built on the lakegate connector contract.

This example reads an in-memory source of ``config.rows`` records: replace ``_fetch`` with reads
from the real source. Every ``config.bad_every``-th record is "malformed" to show how a record that
cannot be parsed is yielded as a reject row (rule, reason, raw text) instead of being dropped or
failing the run.

The cursor is the last $position handed to dlt. It lives in the dlt resource
state, which dlt saves with the load package, so each run resumes after the last position loaded
and a second run over unchanged input yields nothing.

lakegate finds this connector by name (``type: $name``) because its package exposes
``connector``. See README.md beside this module for operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract import DltResource

from connectors import Connector, Kind
from lakegate.columns import POSITION, RAW_TEXT, REJECT_REASON, REJECT_RULE, SOURCE

from .config import ${cls}Config

__all__ = [$exports]


def _fetch(config: ${cls}Config, after: int) -> pa.Table:
    """The source's records after position ``after``, as one Arrow table with the lineage columns."""
    ids = np.arange(after + 1, config.rows + 1, dtype=np.int64)
    bad = (ids % config.bad_every == 0) if config.bad_every else np.zeros(len(ids), dtype=bool)
    pairs = list(zip(ids.tolist(), (~bad).tolist(), strict=True))
    return pa.table(
        {
            "id": pa.array(ids, mask=bad),
            "value": pa.array(ids * 10, mask=bad),
            SOURCE: pa.repeat(pa.scalar(config.source), len(ids)),
            POSITION: pa.array(ids),
            # A record that cannot be parsed: the rule it broke, a reason without its values, and the
            # record exactly as received (the zone destination quarantines it, vaulted if PII).
            REJECT_RULE: pa.array(np.where(bad, "example_malformed", None), pa.string()),
            REJECT_REASON: pa.array(
                [None if ok else f"{config.source} record {i}: not a valid record" for i, ok in pairs],
                pa.string(),
            ),
            RAW_TEXT: pa.array([None if ok else f"{i};???" for i, ok in pairs], pa.string()),
        }
    )


def ${name}_resource(config: ${cls}Config) -> DltResource:
    """A dlt resource yielding the records after the saved cursor as Arrow tables."""

    @dlt.resource(name="$name", write_disposition="append")
    def records() -> Iterator[pa.Table]:
        state: dict[str, Any] = dlt.current.resource_state()
        table = _fetch(config, state.get("cursor", 0))
        if table.num_rows:
            yield table
            # Moved only once dlt has the table: dlt persists the state with the load package.
            state["cursor"] = pc.max(table[POSITION]).as_py()

    return records


connector: Connector[${cls}Config] = Connector(
    name="$name",
    kind=Kind.$kind_member,
    config_model=${cls}Config,
    factory=${name}_resource,
    description="Example $kind connector; replace with what $name reads",
    describe_source=lambda config: f"example source {config.source}",
)
''')

_CONFIG = Template('''\
"""Configuration of the ``$name`` connector."""

from __future__ import annotations

from pydantic import Field

from connectors import ConnectorConfig


class ${cls}Config(ConnectorConfig):
    """What the ``$name`` connector reads; unknown keys and wrong types are refused.

    Attributes:
        source: Name of the source, recorded in ``_lakegate_source`` on every row.
        rows: How many records the example source holds; replace with the real source's settings.
        bad_every: Every n-th example record is malformed (0: none), to show reject rows.
    """

    source: str = Field(default="$name", min_length=1)
    rows: int = Field(default=3, ge=0)
    bad_every: int = Field(default=0, ge=0)
''')

_README = Template("""\
# `$name` connector ($kind)

Operations manual. Replace every *TODO* once the example source is replaced by the real one.

## Configuration

In a pipeline's `defs.yaml`:

```yaml
connector: {type: $name, config: {source: $name, rows: 3}}
```

| key | type | default | meaning |
|---|---|---|---|
| `source` | string | `$name` | recorded in `_lakegate_source` on every row |
| `rows` | integer >= 0 | `3` | records the example source holds (*TODO*: the real settings) |
| `bad_every` | integer >= 0 | `0` | every n-th example record is malformed, to show reject rows |

The config is strict: an unknown key or a wrong type fails at load time with a `ConnectorConfigError`
naming the field. Secrets never go in the config; pass them by environment variable (`{env: NAME}`).

## Output

Arrow tables with the data columns plus `_lakegate_source` (string) and `_lakegate_position` (int64,
the $position). A record that cannot be parsed is yielded as a reject row (`_lakegate_reject_rule`,
`_lakegate_reject_reason`, `_lakegate_raw`), never dropped.

## Guarantees

- **Each record once:** the cursor (last position handed to dlt) is kept in the dlt resource state,
  which dlt saves with the load package; a second run over unchanged input yields nothing.
- **Nothing lost:** the source is acknowledged only after the zone commit (*TODO*: say how).
- **Bounded memory:** *TODO*: the largest table yielded, in rows.

## Failure modes

| symptom | cause | what to do |
|---|---|---|
| `ConnectorConfigError` naming `config.<field>` | invalid `config` in `defs.yaml` | fix that field |
| the run fails while extracting | source unreachable (*TODO*) | rerun: it resumes from the saved cursor |
| rows in the quarantine zone | records that could not be parsed | read their reason and raw text there |

## Registering

lakegate finds the connector by name because `$module` exposes `connector`. To ship it in another
distribution instead, declare the entry point in that distribution's `pyproject.toml`:

```toml
[project.entry-points."lakegate.connectors"]
$name = "$module:connector"
```

## Tests

`tests/test_$name.py` runs the shared conformance kit of its kind (`connectors.testing.$kit`);
`make test` collects it with the rest of the suite. Add tests for the source's own failure modes beside it.
""")

_TEST = Template('''\
"""Conformance tests of the ``$name`` connector ($kind kit); ``make test`` runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.testing import $kit

from .. import connector


class Test${cls}Conformance($kit):
    connector_name = connector.name

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"source": "$name-test", "rows": 5}
$hooks''')

_HOOKS = {
    Kind.BATCH: """
    def make_bad_config(self, tmp_path: Path) -> tuple[dict[str, Any], int, int]:
        # Records 3 and 6 of 7 are malformed: 5 good rows, 2 rejects with their raw text.
        return {"source": "$name-test", "rows": 7, "bad_every": 3}, 5, 2
""",
    Kind.REPLICATION: """
    def change_source(self, raw_config: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], int]:
        # The example source grows by two records; a real test writes to the source database here.
        return {**raw_config, "rows": raw_config["rows"] + 2}, 2
""",
    Kind.STREAMING: """
    def produce(self, raw_config: dict[str, Any], tmp_path: Path, count: int) -> dict[str, Any]:
        # The example source grows by ``count`` messages; a real test produces to the topic here.
        return {**raw_config, "rows": raw_config["rows"] + count}
""",
}
_KITS = {Kind.BATCH: "BatchTests", Kind.REPLICATION: "ReplicationTests", Kind.STREAMING: "StreamingTests"}


def _module_path(package_dir: Path) -> str:
    """Dotted import path of ``package_dir``, climbing the enclosing packages."""
    parts = [package_dir.name]
    parent = package_dir.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts)


def _validate(name: str, kind: str, target_dir: Path) -> Kind:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(
            f"invalid connector name {name!r}: use lowercase letters, digits and '_', starting with a "
            "letter, and not a Python keyword (e.g. 'crm_api')"
        )
    if kind not in {k.value for k in Kind}:
        raise ScaffoldError(f"invalid kind {kind!r}: choose one of {', '.join(k.value for k in Kind)}")
    if name in connector_names():
        raise ScaffoldError(
            f"connector name {name!r} is taken; known connectors: {', '.join(connector_names())}"
        )
    if not target_dir.is_dir():
        raise ScaffoldError(f"target directory {target_dir} does not exist; create it or pass another")
    if (target_dir / name).exists():
        raise ScaffoldError(f"{target_dir / name} already exists; pick another name or remove it")
    return Kind(kind)


def scaffold_connector(name: str, kind: str, target_dir: Path) -> list[Path]:
    """Create the connector package ``target_dir/<name>/`` and return the files written.

    Args:
        name: Registry name and package name, ``^[a-z][a-z0-9_]*$``, not already a known connector.
        kind: ``batch``, ``replication`` or ``streaming``.
        target_dir: Existing directory to create the package in (the CLI defaults to ``connectors/``).

    Raises:
        ScaffoldError: an invalid or taken name, an unknown kind, a missing target directory or an
            existing ``<name>`` in it. Nothing is written then.
    """
    chosen = _validate(name, kind, target_dir)
    package = target_dir / name
    cls = "".join(part.capitalize() for part in name.split("_"))
    values = {
        "name": name,
        "cls": cls,
        "exports": ", ".join(
            f'"{export}"' for export in sorted([f"{cls}Config", "connector", f"{name}_resource"])
        ),
        "kind": chosen.value,
        "kind_member": chosen.name,
        "position": _POSITION_MEANING[chosen],
        "module": _module_path(package),
        "kit": _KITS[chosen],
    }
    values["hooks"] = Template(_HOOKS[chosen]).substitute(values)
    files = {
        package / "__init__.py": _INIT.substitute(values),
        package / "config.py": _CONFIG.substitute(values),
        package / "README.md": _README.substitute(values),
        package / "tests" / "__init__.py": "",
        package / "tests" / f"test_{name}.py": _TEST.substitute(values),
    }
    (package / "tests").mkdir(parents=True)
    for path, text in files.items():
        path.write_text(text)
    return list(files)
