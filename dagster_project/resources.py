"""What a lakegate code location needs from its environment, as Dagster resources.

Declaring them as resources (bound in ``definitions.py``) lets the UI and ``dg check defs`` show what a
deployment must provide; asset bodies never read the environment themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from zones import PII_KEY_ENV, LakegateConfig, load_config

ZONES = "lakegate_zones"
PII_KEY = "lakegate_pii_key"


class ZonesResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Where the zones live: ``lakegate.yaml`` (``config_file``) and ``LAKEGATE_HOME`` (``home``).

    Both default to the environment's choice (``$LAKEGATE_CONFIG`` / ``./lakegate.yaml``, and
    ``$LAKEGATE_HOME`` / ``./.lakegate``), so a laptop needs no configuration.
    """

    config_file: str | None = None
    home: str | None = None

    def load(self) -> LakegateConfig:
        """The zone configuration (raises ``ZoneConfigError`` naming the file and field at fault)."""
        env = dict(os.environ)
        if self.home:
            env["LAKEGATE_HOME"] = self.home
        return load_config(Path(self.config_file) if self.config_file else None, env)


class PiiKeyResource(dg.ConfigurableResource):  # type: ignore[misc]
    """The secret that keys PII tokens; bind it to ``dg.EnvVar("LAKEGATE_PII_KEY")``, never a literal."""

    key: str


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources every lakegate code location binds (resolved only when a run needs them)."""
    return {ZONES: ZonesResource(), PII_KEY: PiiKeyResource(key=dg.EnvVar(PII_KEY_ENV))}
