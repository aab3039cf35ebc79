"""What to gather facts about.

The probe, the config reader and every host-side gatherer share these options; this leaf module
lets each of them import it without importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PROBE_TIMEOUT_S = 30.0
"""A probe that has not answered by then is stuck (a hung NFS mount, a wedged interpreter)."""


@dataclass(frozen=True, slots=True)
class GatherOptions:
    """What to gather facts about."""

    python: str | None = None
    """Target interpreter; None means the doctor's own."""
    config: Path | None = None
    """Deployment config file, when one was given or discovered."""
    model: str | None = None
    """Model folder or hub id, when given."""
    cwd: Path = field(default_factory=Path.cwd)
    """Working directory the deployment runs from."""
    timeout: float = PROBE_TIMEOUT_S
    """Seconds the probe may take."""
    verify_hashes: bool = False
    """Hash every weight file (slow; off by default)."""
    discover: bool = True
    """Look for a config in the usual places when none is named (off for a run that lints a request file)."""
