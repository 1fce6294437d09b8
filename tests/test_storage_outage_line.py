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
