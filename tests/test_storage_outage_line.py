"""A zone store that kept failing is one line: the tracebacks dlt appends to a load job's last error stay
out of it (tests/test_faults.py meets them at random under injected faults; here they are given)."""

from __future__ import annotations

from types import SimpleNamespace

from dagster_project._runs import _storage_outage

JOB_ERROR = (
    "Job for orders.a1b2c3.parquet failed terminally in load c4d5 with LoadClientJobRetry: "
    "OSError: Generic S3 error Error performing GET http://127.0.0.1:1/lake/raw/x.json in 2.1s, "
    "after 1 retries, max_retries 10, retry_timeout 2s - operation timed out\n\n"
    "The above exception was the direct cause of the following exception:\n\n"
    'Traceback (most recent call last):\n  File "/venv/dlt/load/load.py", line 1, in w\n    raise\n'
)


def test_a_job_that_gave_up_on_the_store_is_one_line_without_its_traceback() -> None:
    link = SimpleNamespace(cls_name="PipelineStepFailed", message=JOB_ERROR, cause=None)
    line = _storage_outage([link])
    assert line is not None and "\n" not in line
    assert line.startswith("a zone's storage kept failing after retries (OSError: Generic S3 error")
    assert "operation timed out); the next run resumes" in line
    assert "Traceback" not in line and "above exception" not in line


def test_a_commit_whose_retry_found_its_version_taken_is_an_outage_line() -> None:
    message = (
        "Job with `job_id=orders.8cf5.parquet` had 5 retries. Last failure message was: Traceback (most "
        'recent call last): File "/x/_staged.py", line 253, in commit _internal.CommitFailedError: Failed '
        "to commit transaction: Concurrent transaction failed. The above exception was the direct cause of "
        'the following exception: Traceback (most recent call last): File "/x/client.py", line 568'
    )
    link = SimpleNamespace(cls_name="LoadClientJobRetry", message=message, cause=None)
    line = _storage_outage([link])
    assert line is not None and "\n" not in line
    assert "CommitFailedError: Failed to commit transaction: Concurrent transaction failed" in line
    assert "Traceback" not in line


def test_a_write_whose_request_failed_is_an_outage_line() -> None:
    # deltalake raises a plain DeltaError (no OSError) when a write's PUT fails; dlt keeps its text after
    # its own retries (seen under tests/test_faults.py: an audit record written for a replayed job).
    message = (
        "Job with `job_id=customers.3159065ece.parquet` had 5 retries which is a multiple of "
        "`max_retry_count=5`. Last failure message was: Traceback (most recent call last): File "
        '"/x/zones/audit.py", line 48, in append_record write_deltalake( _internal.DeltaError: Failed to '
        "parse parquet: External: Generic S3 error: Error performing PUT http://127.0.0.1:38497/lake/pii/"
        "_lakegate/audit/part-0.snappy.parquet in 2.1s, after 5 retries, max_retries: 10, retry_timeout: 2s"
        " - HTTP error: error sending request Pending packages are left in the pipeline"
    )
    link = SimpleNamespace(cls_name="PipelineStepFailed", message=message, cause=None)
    line = _storage_outage([link])
    assert line is not None and "\n" not in line and "Traceback" not in line
    assert line.startswith("a zone's storage kept failing after retries (DeltaError: Failed to parse parquet")
    assert "Generic S3 error: Error performing PUT" in line


def test_a_data_error_from_deltalake_is_not_an_outage() -> None:
    message = "Job failed: _internal.DeltaError: Schema error: Invalid data type for Delta Lake: Null"
    link = SimpleNamespace(cls_name="PipelineStepFailed", message=message, cause=None)
    assert _storage_outage([link]) is None
