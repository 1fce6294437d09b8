"""Pipeline-level edge cases: a bad drop never blocks the next, ELT with PII, concurrent runs."""

from __future__ import annotations

from pathlib import Path

import fsspec
import polars as pl
import pytest

from dagster_project.cli import main
from pipelines import _flow as flow
from pipelines.demo import write_demo
from pipelines.spec import PipelineSpec
from zones import LoadReport, PipelineBusyError, ZoneName, load_config, open_zone


def put(path: str, text: str) -> None:
    landing = open_zone("landing", load_config())
    with fsspec.open(f"{landing.config.url}/{path}", "w", auto_mkdir=True) as handle:
        handle.write(text)


def test_an_empty_drop_beside_a_good_one_blocks_nothing(lakegate_home: Path) -> None:
    manifest = write_demo(load_config(), rows=20)
    put("crm/customers/customers_2026-11-02.ndjson", "")
    assert main(["run", "customers"]) == 0
    config = load_config()
    assert (
        open_zone("curated", config).read("crm", "customers").height
        == manifest.distinct_keys["crm/customers"]
    )
    rules = open_zone("quarantine", config).read("crm", "customers")["_lakegate_rule"].to_list()
    assert "empty_file" in rules
    put(
        "crm/customers/customers_2026-11-03.ndjson",
        '{"customer_id": 500, "name": "n", "email": "e@x.io", '
        '"phone": "+1 555 0100", "country": "US", "signed_up_at": "2026-11-03T00:00:00Z"}\n',
    )
    assert main(["run", "customers"]) == 0
    assert 500 in open_zone("curated", config).read("crm", "customers")["customer_id"].to_list()


ELT_WITH_PII = {
    "name": "leads",
    "domain": "crm",
    "connector": {"type": "files", "config": {"url": "lakegate://landing/crm/leads/*.csv"}},
    "pattern": "ELT",
    "primary_key": ["lead_id"],
    "columns": {"lead_id": {"type": "int64"}, "email": {"type": "string"}, "phone": {"type": "string"}},
    "pii": {"email": "tokenize", "phone": "mask"},
}


def test_elt_with_pii_keeps_raw_tokens_and_masks_in_curated(lakegate_home: Path) -> None:
    spec = PipelineSpec.model_validate(ELT_WITH_PII)
    put("crm/leads/l.csv", "lead_id,email,phone\n1,ann@example.com,+49 30 1234567\n")
    config = load_config()
    with flow.dlt_pipeline(
        spec, "ingest", flow.ingest_target(spec, "run-1", config), LoadReport()
    ) as pipeline:
        pipeline.run(flow.ingest_source(spec, config))
    with flow.dlt_pipeline(
        spec, "curate", flow.curate_target(spec, "run-1", config), LoadReport()
    ) as pipeline:
        pending = flow.pending_raw(spec, config)
        assert pending is not None
        pipeline.run(flow.curate_source(spec, pending))
    raw = open_zone(ZoneName.RAW, config).read("crm", "leads").select("email", "phone")
    curated = open_zone(ZoneName.CURATED, config).read("crm", "leads").select("email", "phone")
    assert curated.rows() == raw.rows() == [(raw["email"][0], "****4567")]
    vault = open_zone(ZoneName.PII, config).read("crm", "leads")
    assert vault.filter(pl.col("token") == raw["email"][0])["value"].to_list() == ["ann@example.com"]
    assert flow.pending_raw(spec, config) is None  # the raw version applied was recorded


def test_a_second_run_of_the_same_pipeline_is_refused_while_one_runs(lakegate_home: Path) -> None:
    spec = PipelineSpec.model_validate(ELT_WITH_PII)
    target = flow.ingest_target(spec, "run-1", load_config())
    with (
        flow.dlt_pipeline(spec, "ingest", target, LoadReport()),
        pytest.raises(PipelineBusyError, match="pipeline 'lakegate_crm_leads_ingest' is already running"),
        flow.dlt_pipeline(spec, "ingest", target, LoadReport()),
    ):
        pass


def test_a_curate_interrupted_by_an_outage_is_finished_by_the_next_run(
    lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zones.destination as destination

    spec = PipelineSpec.model_validate({**ELT_WITH_PII, "pii": {}, "transforms": ["dedupe_latest"]})
    put("crm/leads/l.csv", "lead_id,email,phone\n1,a@x.io,1\n1,b@x.io,2\n2,c@x.io,3\n")
    config = load_config()
    with flow.dlt_pipeline(spec, "ingest", flow.ingest_target(spec, "r1", config), LoadReport()) as pipeline:
        pipeline.run(flow.ingest_source(spec, config))

    def outage(*_: object, **__: object) -> None:
        raise OSError("curated zone unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(destination._delta, "upsert", outage)
        with (
            pytest.raises(Exception, match="curated zone unreachable"),
            flow.dlt_pipeline(
                spec, "curate", flow.curate_target(spec, "r1", config), LoadReport()
            ) as pipeline,
        ):
            pending = flow.pending_raw(spec, config)
            assert pending is not None
            pipeline.run(flow.curate_source(spec, pending))
    # The storage is back: opening the curate pipeline loads the interrupted package first.
    with flow.dlt_pipeline(spec, "curate", flow.curate_target(spec, "r2", config), LoadReport()):
        assert flow.pending_raw(spec, config) is None
    curated = open_zone(ZoneName.CURATED, config).read("crm", "leads").sort("lead_id")
    assert curated["lead_id"].to_list() == [1, 2]
    quarantined = open_zone(ZoneName.QUARANTINE, config).read("crm", "leads")["_lakegate_rule"].to_list()
    assert quarantined == ["transform:dedupe_latest"]  # once: the retry did not quarantine it again
