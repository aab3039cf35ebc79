"""Host facts: container, memory and disk (filled in by the GPU-stack work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoglm_doctor.probe.collect import GatherOptions


@dataclass(frozen=True)
class HostFacts:
    """The machine around the interpreter."""

    in_container: bool = False
    """Whether the probe found container markers."""


def gather(options: GatherOptions) -> HostFacts | None:
    """Gather the host facts for ``options`` (None: nothing to gather yet)."""
    return None
