"""The zones package's errors: one base, :class:`ZoneError`, under lakegate's root error."""

from lakegate.errors import LakegateError


class ZoneError(LakegateError):
    """Base of every error the zones package raises for config, credentials, data or a busy pipeline."""
