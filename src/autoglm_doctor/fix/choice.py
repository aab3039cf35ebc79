"""Which torch build and which transformers the fix pins: the shared chooser, with the fix's error.

The search lives in :mod:`autoglm_doctor.knowledge.torch_choice`, which the ``cuda.torch-build`` check calls as
well, so the requirements file and the check's fix command name the same torch build and wheel index.
Here its "nothing fits" becomes :class:`~.errors.Unsatisfiable`, which ``--fix`` reports.
"""

from __future__ import annotations

from autoglm_doctor.knowledge import torch_choice
from autoglm_doctor.knowledge.torch_choice import Choice, Host, TorchPick, TransformersPick
from autoglm_doctor.packs import Pack
from autoglm_doctor.probe.snapshot import Snapshot

from .errors import Unsatisfiable


def choose(snap: Snapshot, pack: Pack, *, device: str | None = None, below_recommended: bool = True) -> Choice:
    """The (torch, transformers) pair to pin; raises :class:`Unsatisfiable` naming two conflicting constraints."""
    try:
        return torch_choice.choose(snap, pack, device=device, below_recommended=below_recommended)
    except torch_choice.NoChoice as exc:
        raise Unsatisfiable(exc.first, exc.second, exc.detail) from None


__all__ = ["Choice", "Host", "TorchPick", "TransformersPick", "Unsatisfiable", "choose"]
