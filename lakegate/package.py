"""What a dlt load package carries from the connector that extracted it to the zone destination that
commits it: the one place the keys are spelled (connectors write them, ``zones.positions`` reads them).
"""

from typing import Final

STATE_KEY: Final = "lakegate"
"""lakegate's entry in a load package's state."""
UNITS: Final = "units"
"""Source units the package covers completely, e.g. landing files: ``{source id: expires}``. The
destination commits each as the position ``pos:<source id>`` with the package's last load job; an
expiring unit (a landing file that is archived once committed) carries ``lastUpdated`` so table upkeep
can expire it."""
