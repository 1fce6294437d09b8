"""The root of lakegate's error tree.

Every package derives its own base from :class:`LakegateError` (``ConnectorError``, ``TransformError``,
``ZoneError``, ``PipelineError``), and every user mistake or environment problem lakegate detects is
one of them, with a message that names the file, field or record and the fix. The CLI prints these —
and only these — as one line; anything else is a bug and keeps its traceback.
"""


class LakegateError(Exception):
    """A problem lakegate detected and explained: bad input, bad config, an unavailable service."""
