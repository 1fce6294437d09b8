"""The zones package's errors: one base, :class:`ZoneError`, under lakegate's root error."""

from lakegate.errors import LakegateError


class ZoneError(LakegateError):
    """Base of every error the zones package raises for config, credentials, data or a busy pipeline."""


class ZoneStorageError(ZoneError, OSError):
    """A zone's store could not be reached or kept failing past its client's retries (an outage, not a
    bug). An ``OSError`` still, so callers that retry storage trouble keep doing so."""
