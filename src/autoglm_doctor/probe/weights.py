"""Model-folder facts, read from file headers only (filled in by the weights work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoglm_doctor.configfile.facts import ConfigFacts
    from autoglm_doctor.probe.collect import GatherOptions


@dataclass(frozen=True)
class ModelFacts:
    """The located model and what its headers say."""

    path: str = ""
    """Where the model was looked for."""


def gather(options: GatherOptions, config: ConfigFacts | None = None) -> ModelFacts | None:
    """Gather the model facts for ``options`` (None: nothing to gather yet)."""
    return None
