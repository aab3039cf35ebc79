"""Which interpreter ``check`` inspects when ``--python`` is not given.

Installed as a tool (``pipx install``, ``uv tool install``), the doctor runs from a venv of its
own that holds nothing of the deployment: its ``sys.executable`` is the wrong default. The
target is, in order: ``--python``; the active environment (``VIRTUAL_ENV``, then
``CONDA_PREFIX``); the doctor's own interpreter when it is not a tool venv (the doctor installed
into the deployment's venv and run by its full path); the ``python`` first on PATH; and the
doctor's own tool venv only when there is no other. The report names the choice, and a target
that is the doctor's own tool venv, however it was reached, is a warning (``python.doctor-venv``)
that says how to point it at the deployment.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TOOL_MARKERS = ("pipx_metadata.json", "uv-receipt.toml")
"""Files that pipx and uv write into the root of a tool's venv."""


@dataclass(frozen=True, slots=True)
class Target:
    """The interpreter to inspect and why it was chosen."""

    python: str
    """The interpreter (a path, or what the user gave to --python)."""
    how: str
    """How it was chosen, for the report's header: ``--python``, ``$VIRTUAL_ENV``..."""
    doctor_tool_venv: str = ""
    """The doctor's own tool venv (pipx, uv tool) when that is the target by default; else empty."""


def _interpreter_in(prefix: str) -> str | None:
    for sub in ("bin/python", "bin/python3", "Scripts/python.exe"):
        candidate = Path(prefix) / sub
        if candidate.exists():
            return str(candidate)
    return None


def _prefix_of(executable: str) -> Path:
    """The environment folder of an interpreter path (``<prefix>/bin/python``), without following links."""
    path = Path(os.path.abspath(executable))
    return path.parent.parent if path.parent.name in ("bin", "Scripts") else path.parent


def environment_of(python: str) -> Path | None:
    """The environment folder of an interpreter path (or of a venv folder given itself); None when none is seen.

    A venv's ``bin/python`` links to the base interpreter: its own folder counts when it holds
    ``pyvenv.cfg``; else the folder the link resolves into (``/usr/bin/python3.11`` -> ``/usr``). Only a
    folder that looks like an environment counts (``pyvenv.cfg``, ``conda-meta/``, ``lib/python3.*``),
    never ``/``: ``/bin/python3`` must not make the whole file system off limits.
    """
    path = Path(os.path.abspath(python))
    candidates = [path] if path.is_dir() else [_prefix_of(str(path)), _prefix_of(os.path.realpath(path))]
    for root in candidates:
        if root == root.parent:
            continue
        if (root / "pyvenv.cfg").is_file() or (root / "conda-meta").is_dir() or any(root.glob("lib/python3*")):
            return root
    return None


def tool_venv(prefix: str | Path) -> bool:
    """Whether ``prefix`` is a venv that pipx or uv made for one tool (it holds none of a deployment)."""
    root = Path(prefix)
    if any((root / marker).is_file() for marker in TOOL_MARKERS):
        return True
    return root.parent.name == "venvs" and root.parent.parent.name == "pipx"


def _same_environment(executable: str, prefix: str) -> bool:
    """Whether ``executable`` belongs to the environment at ``prefix`` (links resolved: pipx's ~/.local paths)."""
    found = executable if os.sep in executable else (shutil.which(executable) or executable)
    return os.path.realpath(_prefix_of(found)) == os.path.realpath(prefix)


def choose(
    python: str | None,
    environ: Mapping[str, str] | None = None,
    *,
    own_prefix: str | None = None,
    own_executable: str | None = None,
) -> Target:
    """The target interpreter and how it was chosen.

    ``--python``; else the active environment (``VIRTUAL_ENV``, then ``CONDA_PREFIX``); else the
    doctor's own interpreter when it is not a tool venv (installed into the deployment's venv and
    run by its full path, it inspects that venv); else the ``python`` first on PATH; else the
    doctor's own. Whichever way the choice lands on the doctor's own tool venv, it carries
    ``doctor_tool_venv`` (python.venv warns).
    """
    env = os.environ if environ is None else environ
    own_prefix = own_prefix or sys.prefix
    own_executable = own_executable or sys.executable
    own_is_tool = tool_venv(own_prefix)
    chosen: tuple[str, str] | None = (python, "--python") if python else None
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        if chosen is None and env.get(variable) and (found := _interpreter_in(env[variable])):
            chosen = (found, f"${variable}")
    if chosen is None and not own_is_tool:
        chosen = (own_executable, "the doctor's own interpreter: no active environment")
    if chosen is None:
        on_path = shutil.which("python", path=env.get("PATH")) or shutil.which("python3", path=env.get("PATH"))
        if on_path:
            chosen = (on_path, "the python first on PATH")
    if chosen is None:
        chosen = (own_executable, "the doctor's own interpreter (no active environment, no python on PATH)")
    executable, how = chosen
    same = _same_environment(executable, own_prefix)
    if same and how.startswith("the python first"):
        how += ", the doctor's own"
    return Target(executable, how, doctor_tool_venv=own_prefix if same and own_is_tool else "")
