"""The formats ``--fix-format`` offers (import-light: the command line needs it at start-up)."""

from __future__ import annotations

import enum


class FixFormat(str, enum.Enum):
    """What ``--fix-format`` writes."""

    REQUIREMENTS = "requirements"
    CONSTRAINTS = "constraints"
    PYLOCK = "pylock"
