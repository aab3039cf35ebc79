"""Config facts: the deployment config, parsed with positions (filled in by the config work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoglm_doctor.probe.collect import GatherOptions


@dataclass(frozen=True)
class ConfigFacts:
    """The deployment config as the doctor understood it."""

    path: str = ""
    """The config file, as given."""
    data: dict[str, Any] = field(default_factory=dict)
    """Parsed top-level mapping (env vars interpolated); empty when it did not parse."""


def gather(options: GatherOptions) -> ConfigFacts | None:
    """Gather the config facts for ``options`` (None: nothing to gather yet)."""
    return None
