"""lakegate's Dagster code location (``dagster_project.definitions``) and its command line (``cli``)."""

import lakegate  # noqa: F401  (first: it picks Arrow's allocator before pyarrow loads)
