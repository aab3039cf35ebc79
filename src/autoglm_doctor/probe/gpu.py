"""GPU facts: NVIDIA driver, visible GPUs and the CUDA toolkit (filled in by the GPU-stack work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoglm_doctor.probe.collect import GatherOptions


@dataclass(frozen=True)
class GpuFacts:
    """What the host's GPU stack looks like."""

    nvml_error: str = ""
    """Why NVML could not be used (no library, no driver...); empty when it worked."""


def gather(options: GatherOptions) -> GpuFacts | None:
    """Gather the gpu facts for ``options`` (None: nothing to gather yet)."""
    return None
