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

__all__ = ["ScaffoldError", "scaffold_connector"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

_POSITION_MEANING = {
    Kind.BATCH: "record number",
    Kind.REPLICATION: "log sequence number (LSN)",
    Kind.STREAMING: "offset",
}


class ScaffoldError(ValueError):
    """The scaffold cannot be created; the message is one line naming the problem and the fix."""


_INIT = Template('''\
"""The ``$name`` connector ($kind), built on the lakegate connector contract.

This example reads an in-memory source of ``config.rows`` records: replace ``_fetch`` with reads from
the real source. The cursor is the last $position handed to dlt.
It lives in the dlt resource state, which dlt saves with the load package, so each run resumes after the
last position loaded and a second run over unchanged input yields nothing. See README.md beside this
module for operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract import DltResource

from connectors import POSITION, SOURCE, Connector, Kind, register_connector

from .config import ${cls}Config

__all__ = [$exports]


def _fetch(config: ${cls}Config, after: int) -> pa.Table:
    """The source's records after position ``after``, as one Arrow table with the lineage columns."""
    ids = pa.array(range(after + 1, config.rows + 1), pa.int64())
    return pa.table(
        {
            "id": ids,
            "value": pc.multiply(ids, 10),
            SOURCE: pa.repeat(pa.scalar(config.source), len(ids)),
            POSITION: ids,
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


connector: Connector[${cls}Config] = register_connector(
    Connector(
        name="$name",
        kind=Kind.$kind_member,
        config_model=${cls}Config,
        factory=${name}_resource,
        description="Example $kind connector; replace with what $name reads",
    )
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
    """

    source: str = Field(default="$name", min_length=1)
    rows: int = Field(default=3, ge=0)
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

The connector registers itself when `$module` is imported. To make lakegate discover it by name,
declare the entry point in the `pyproject.toml` of the distribution that ships it:

```toml
[project.entry-points."lakegate.connectors"]
$name = "$module:connector"
```

## Tests

`tests/test_$name.py` runs the shared conformance kit (`connectors.testing.ConnectorConformance`);
run `pytest` on it from the project root. Add tests for the source's own failure modes beside it.
""")

_TEST = Template('''\
"""Conformance tests of the ``$name`` connector: run ``pytest`` on this file from the project root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.testing import ConnectorConformance

from .. import connector


class Test${cls}Conformance(ConnectorConformance):
    connector_name = connector.name

    def make_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"source": "$name-test", "rows": 5}
''')


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
    }
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
