"""The pipeline core's errors: one base, :class:`PipelineError`, under lakegate's root error."""

from lakegate.errors import LakegateError


class PipelineError(LakegateError):
    """Base of every error the pipeline core raises for a user's declaration, request or environment."""


class PipelineSpecError(PipelineError, ValueError):
    """A ``defs.yaml`` that does not validate; the message names the file, the field and the fix."""


class UnknownPipelineError(PipelineError, LookupError):
    """No pipeline has the requested name; the message lists the known ones."""


class TableRequestError(PipelineError, ValueError):
    """A zone table that cannot be shown as asked (malformed dataset path, missing table or version)."""
