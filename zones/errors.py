"""The zones package's errors: one base, :class:`ZoneError`, under lakegate's root error."""

import re

from lakegate.errors import LakegateError

STORE_FAILURE = re.compile(
    r"Generic (S3|GCS|MicrosoftAzure|LocalFileSystem|HTTP) error|Error interacting with object store"
)
"""object_store's wording of a failed request ("Generic S3 error: Error performing PUT ..."). deltalake
raises a plain ``DeltaError`` (not an ``OSError``, as its reads do) when a write's request fails."""


def store_failed(message: str) -> bool:
    """Whether an error's text is a request to a zone's store that failed (see :data:`STORE_FAILURE`)."""
    return STORE_FAILURE.search(message) is not None


class ZoneError(LakegateError):
    """Base of every error the zones package raises for config, credentials, data or a busy pipeline."""


class ZoneStorageError(ZoneError, OSError):
    """A zone's store could not be reached or kept failing past its client's retries (an outage, not a
    bug). An ``OSError`` still, so callers that retry storage trouble keep doing so."""
