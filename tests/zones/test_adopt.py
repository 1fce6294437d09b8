"""A clean, typed load file becomes the Delta data file as it is; everything else is still rewritten."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

import pipelines
from lakegate import columns as col
from pipelines import PipelineSpec
from pipelines import _flow as flow
from zones import LoadReport, ZoneName, lakegate_pipeline, load_config, open_zone

HEADER = "id,qty,price,gift,at,note\n"


def spec(url: str, **extra: object) -> PipelineSpec:
    return PipelineSpec.model_validate(
        {
            "name": "orders",
            "domain": "shop",
            "pattern": "EL",
            "connector": {"type": "files", "config": {"url": url}},
            "primary_key": ["id"],
            "columns": {
                "id": {"type": "int64"},
                "qty": {"type": "int32"},
                "price": {"type": "float64"},
                "gift": {"type": "bool"},
                "at": {"type": "datetime"},
                "note": {"type": "string"},
            },
            **extra,
        }
    )


def csv(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    return path.as_uri()


def raw(domain: str = "shop", name: str = "orders") -> pl.DataFrame:
    return open_zone(ZoneName.RAW, load_config()).read(domain, name).sort(col.POSITION)


def test_a_clean_file_is_adopted_with_its_lineage_types_and_statistics(lakegate_home: Path) -> None:
    url = csv(
        lakegate_home / "in" / "a.csv",
        [f"{i},{i % 7},{i}.5,true,2024-01-0{1 + i % 9}T10:00:00,n{i}" for i in range(50)],
    )
    report = pipelines.ingest(spec(url), run_id="run-1")

    assert (report.input_rows, report.committed_rows, report.adopted_jobs) == (50, 50, 1)
    rows = raw()
    assert rows.schema["id"] == pl.Int64 and rows.schema["qty"] == pl.Int32
    assert rows.schema["at"] == pl.Datetime("us", "UTC") and rows.schema["gift"] == pl.Boolean
    assert rows["id"].to_list() == list(range(50)) and rows[col.POSITION].to_list() == list(range(2, 52))
    assert rows[col.RUN_ID].unique().to_list() == ["run-1"]
    assert rows[col.LOAD_ID].n_unique() == 1
    assert (rows[col.INGEST_DATE] == rows[col.INGESTED_AT].dt.date()).all()
    log = Path(open_zone(ZoneName.RAW, load_config()).table_uri("shop", "orders").removeprefix("file://"))
    entries = [json.loads(line) for line in (log / "_delta_log" / f"{0:020d}.json").read_text().splitlines()]
    (add,) = [json.loads(e["add"]["stats"]) for e in entries if "add" in e]
    assert add["numRecords"] == 50
    assert (add["minValues"]["id"], add["maxValues"]["id"]) == (0, 49)
    assert add["minValues"]["at"] == "2024-01-01T10:00:00.000Z"


def test_bad_values_are_quarantined_and_their_neighbours_still_adopted(lakegate_home: Path) -> None:
    lines = [f"{i},1,2.5,false,2024-01-01T00:00:00Z,x" for i in range(20)]
    lines[3] = "3,many,2.5,false,2024-01-01T00:00:00Z,x"  # qty does not cast
    lines[7] = "7,1,2.5,false,2024-01-01T00:00:00Z , x"  # blanks: cast_schema strips them, the zone reads it
    report = pipelines.ingest(spec(csv(lakegate_home / "in" / "b.csv", lines)), run_id="run-1")

    assert (report.input_rows, report.committed_rows, report.quarantined_rows) == (20, 19, 1)
    assert report.adopted_jobs == 1  # the typed rows; the rows left as text were rewritten
    rows = raw()
    assert sorted(rows["id"].to_list()) == [i for i in range(20) if i != 3]
    quarantined = open_zone(ZoneName.QUARANTINE, load_config()).read("shop", "orders")
    assert quarantined[col.POSITION].to_list() == [5] and quarantined[col.RULE].to_list() == ["cast_schema"]
    assert "many" in quarantined[col.RAW_TEXT][0]


def test_pii_datasets_are_never_adopted(lakegate_home: Path) -> None:
    url = csv(lakegate_home / "in" / "c.csv", ["1,1,2.5,true,2024-01-01,secret-note"])
    report = pipelines.ingest(spec(url, pii={"note": "tokenize"}), run_id="run-1", pii_key="k" * 32)
    assert report.adopted_jobs == 0 and report.committed_rows == 1
    assert raw()["note"][0] != "secret-note"


def test_a_package_a_later_run_loads_is_rewritten_with_that_runs_id(lakegate_home: Path) -> None:
    """Lineage stamped at extract is only kept when it is the loading run's own."""
    the_spec = spec(
        csv(lakegate_home / "in" / "d.csv", ["1,1,2.5,true,2024-01-01,x", "2,2,3.5,false,2024-01-02,y"])
    )
    config = load_config()
    first = flow.ingest_target(the_spec, "run-died", config)
    with flow.dlt_pipeline(the_spec, "ingest", first, LoadReport()) as pipeline:
        pipeline.extract(flow.ingest_source(the_spec, config, first))
        pipeline.normalize()  # the run dies here: the package waits, with run-died stamped in it
    second = flow.ingest_target(the_spec, "run-next", config)
    report = LoadReport()
    with lakegate_pipeline(f"lakegate_{the_spec.key}_ingest", second, report):
        pass  # loads the pending package first

    assert (report.committed_rows, report.adopted_jobs) == (2, 0)
    assert raw()[col.RUN_ID].unique().to_list() == ["run-next"]


INGEST_IN_A_FRESH_PROCESS = """
import sys
import pipelines
from tests.zones.test_adopt import csv, spec
from pathlib import Path
url = csv(Path(sys.argv[1]) / "in" / "a.csv", sys.argv[2:])
report = pipelines.ingest(spec(url), run_id="run-1")
print(report.committed_rows, report.quarantined_rows, report.adopted_jobs, "pandas" in sys.modules)
"""


def test_an_ingest_never_imports_pandas(lakegate_home: Path) -> None:
    # pyarrow imports pandas (~0.2 s and ~50 MB per process) to convert a Python value to an Arrow scalar
    # or array; the files fast path, the quarantine of a bad value and adoption need none.
    lines = [f"{i},{i % 7},{i}.5,true,2024-01-0{1 + i % 9}T10:00:00,n{i}" for i in range(50)]
    lines[7] = "7,seven,7.5,true,2024-01-01T10:00:00,n7"
    done = subprocess.run(
        [sys.executable, "-c", INGEST_IN_A_FRESH_PROCESS, str(lakegate_home), *lines],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["49", "1", "1", "False"]
