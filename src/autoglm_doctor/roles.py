"""The machine's role, from evidence, when ``--pack`` is not given.

Open-AutoGLM runs as a GPU server (vLLM or SGLang from a launch command: pack
``open-autoglm-server``), a phone-agent client (pack ``open-autoglm-phone``) or in-process
(transformers + FastAPI with the doctor's config: pack ``open-autoglm``); one host may be several.
:func:`detect_role` reads what the machine shows and names each piece of evidence, so the report
can say why it checked what it checked; with no evidence at all the question is put to the user
(:class:`NoRoleEvidence`, a usage error that lists the three commands).

Whether a file starts (or configures) a serving engine is decided by one classifier,
:func:`autoglm_doctor.engines.detect` (what ``configfile.load.file_kind`` and the config's ``engine``
use too): a shell command that starts an engine, or a YAML/JSON mapping of flags only one engine
has (vLLM's ``--config`` file), is server evidence; the doctor's own ``autoglm.yaml`` (``model_path``,
``torch_dtype``...) is not, although SGLang also spells a flag ``model-path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoglm_doctor.phone import CLIENT_VARIABLES

if TYPE_CHECKING:
    from autoglm_doctor.probe.snapshot import Snapshot

# The engines and the snapshot's helpers are imported where they are used: the working directory is searched
# for a launch script before the probe starts, and in a folder without one that search imports nothing.

SERVER = "open-autoglm-server"
PHONE = "open-autoglm-phone"
IN_PROCESS = "open-autoglm"
ORDER = (IN_PROCESS, SERVER, PHONE)
"""Merged packs are listed in this order."""

LAUNCH_FILE_NAMES = ("serve.sh", "launch.sh", "start.sh", "start_server.sh", "run_server.sh", "server.sh")
"""Launch files looked for first in the working directory; then any other ``*.sh`` there."""
LAUNCH_FILES_READ = 50
"""At most this many other ``*.sh`` files are read (a scripts folder as the working directory stays quick)."""
LAUNCH_FILE_MAX_BYTES = 64 * 1024
"""A launch script is a few lines: a bigger ``*.sh`` is not read."""


class NoRoleEvidence(ValueError):
    """Nothing on this machine says which deployment it is: the question, with the commands to choose from."""


@dataclass(frozen=True, slots=True)
class Role:
    """The packs chosen for this machine and why."""

    packs: tuple[str, ...]
    """Built-in pack names, merged in this order."""
    evidence: tuple[str, ...]
    """One line per piece of evidence, e.g. ``serve.sh in the working directory starts vllm serve``."""
    chosen_by: str = "evidence"
    """``evidence`` (detected) or ``--pack`` (given)."""


def launch_file_in(cwd: Path) -> Path | None:
    """A serving engine's launch script in ``cwd``: the usual names first, then any ``*.sh`` that starts one.

    Read as text (at most :data:`LAUNCH_FILE_MAX_BYTES`), never run.
    """
    try:
        others = sorted(p for p in cwd.glob("*.sh") if p.name not in LAUNCH_FILE_NAMES)[:LAUNCH_FILES_READ]
    except OSError:
        return None
    for candidate in [*(cwd / name for name in LAUNCH_FILE_NAMES), *others]:
        if _starts_engine(candidate):
            return candidate
    return None


def _starts_engine(path: Path) -> bool:
    try:
        if not path.is_file():
            return False  # the usual case: nothing imported (the engines cost 15 ms before the probe starts)
        from autoglm_doctor.safeio import read_bytes

        text = read_bytes(path, "config", LAUNCH_FILE_MAX_BYTES, head=True).decode("utf-8", errors="replace")
    except OSError:
        return False
    from autoglm_doctor import engines

    return bool(engines.detect(text, "flags"))


def launch_engine(snap: Snapshot) -> str:
    """The engine whose launch command, or file of flags, the config the doctor read is; else empty.

    ``config.engine`` is :func:`autoglm_doctor.engines.detect`'s answer for the parsed file: a mapping
    with one of the doctor's own keys (``model_path``) is the doctor's config, whatever else it holds.
    """
    config = snap.config
    if config is None or not config.exists or not config.parsed:
        return ""
    return config.engine


def detect_role(snap: Snapshot, *, cwd: Path, environ: Mapping[str, str], launch_found: Path | None = None) -> Role:
    """The packs this machine needs, each backed by evidence; raises :class:`NoRoleEvidence` when there is none.

    ``launch_found``: a launch script found in the working directory (:func:`launch_file_in`) and read as
    the config. ``environ`` is the live environment (the snapshot's ``env`` when re-evaluating one).
    """
    evidence: dict[str, list[str]] = {name: [] for name in ORDER}
    config = snap.config
    engine = launch_engine(snap)
    if engine and config is not None:
        where = " (found in the working directory, read as --config)" if launch_found is not None else ""
        does = "starts" if config.format == "flags" else "holds the flags of"
        evidence[SERVER].append(f"{config.path} {does} {engine}{where}")
    from autoglm_doctor import engines
    from autoglm_doctor.probe.snapshot import canonical_name

    installed = {canonical_name(d.name): d for d in snap.distributions}
    for name in engines.ENGINES:
        if name in installed:
            evidence[SERVER].append(f"{name} {installed[name].version} is installed in the target environment")
    if "phone-agent" in installed or any("phone_agent" in d.top_level for d in snap.distributions):
        evidence[PHONE].append("phone_agent is installed in the target environment")
    elif any(e and Path(e, "phone_agent", "__init__.py").is_file() for e in snap.python.sys_path if e):
        evidence[PHONE].append("phone_agent is on the target interpreter's path")
    if (cwd / "phone_agent").is_dir() and (cwd / "main.py").is_file():
        evidence[PHONE].append(f"an Open-AutoGLM checkout in the working directory ({cwd})")
    set_vars = [name for name in CLIENT_VARIABLES if environ.get(name)]
    if set_vars:
        evidence[PHONE].append(f"{', '.join(set_vars)} {'is' if len(set_vars) == 1 else 'are'} set")
    if config is not None and config.exists and not engine:
        evidence[IN_PROCESS].append(f"{config.path} is the in-process service's config ({_how(config.source)})")
    elif config is not None and config.path and not config.exists:
        # named but unreadable (config.syntax says so, exit 1): its name is all there is to go by
        role = SERVER if config.path.endswith(".sh") else IN_PROCESS
        evidence[role].append(f"{config.path} is named by {_how(config.source)} (it cannot be read: see config.syntax)")
    stack = [installed[n] for n in ("transformers", "torch") if n in installed]
    if not any(evidence.values()) and stack:  # the weakest: only when nothing else says what this is
        versions = " and ".join(f"{d.name} {d.version}" for d in stack)
        verb = "are" if len(stack) > 1 else "is"
        evidence[IN_PROCESS].append(f"{versions} {verb} installed in the target environment (the in-process stack)")
    packs = tuple(name for name in ORDER if evidence[name])
    if not packs and not snap.python.version:  # nothing to ask about: the target itself is the finding
        return Role(
            packs=(IN_PROCESS,),
            evidence=("none: the target interpreter could not be probed (see python.version), the default pack",),
        )
    if not packs:
        raise NoRoleEvidence(question())
    return Role(packs=packs, evidence=tuple(line for name in packs for line in evidence[name]))


def _how(source: str) -> str:
    return {"--config": "--config", "AUTOGLM_CONFIG": "named by AUTOGLM_CONFIG"}.get(
        source, "found in the working directory"
    )


def question() -> str:
    """What to ask when nothing says what this machine is."""
    return (
        "which deployment is this machine? Nothing here says: no vLLM/SGLang launch command (serve.sh, launch.sh or "
        "another *.sh here, or --config), no vLLM/SGLang or phone_agent in the target environment, no "
        "PHONE_AGENT_* variable, no autoglm.yaml, no torch or transformers. Run the one that fits:\n"
        "  autoglm-doctor check --pack open-autoglm-server --config serve.sh   # the GPU server (vLLM/SGLang)\n"
        "  autoglm-doctor check --pack open-autoglm-phone                      # the phone-agent client (adb/hdc/iOS)\n"
        "  autoglm-doctor check --pack open-autoglm --config autoglm.yaml      # in-process (transformers + FastAPI)"
    )


APPLIES: dict[str, tuple[str, ...]] = {
    "packages.abi": (IN_PROCESS, SERVER),
    "cuda.*": (IN_PROCESS, SERVER),
    "system.*": (IN_PROCESS, SERVER),
    "config.syntax": (IN_PROCESS, SERVER),
    "config.values": (IN_PROCESS, SERVER),
    "config.request": (IN_PROCESS,),
    "weights.*": (IN_PROCESS, SERVER),
    "service.agent-step": (PHONE,),
    "devices.*": (PHONE,),
    "smoke.*": (IN_PROCESS,),
}
"""Checks that apply to some of the built-in roles only (the others apply to every role).

The client runs no model and has no GPU need: the GPU, torch-extension, weights, launch-config and smoke checks
are not its; the phone checks are only the client's; the smoke test loads the model in-process.
"""

WHAT_IT_IS = {
    IN_PROCESS: "the in-process service (transformers + FastAPI)",
    SERVER: "the vLLM/SGLang model server",
    PHONE: "the phone-agent client",
}


def applies(check_id: str, pack_names: tuple[str, ...]) -> bool:
    """Whether a check applies to a deployment made of these packs (a pack file of the user's: every check does)."""
    import fnmatch

    if any(name not in WHAT_IT_IS for name in pack_names):
        return True
    for pattern, roles in APPLIES.items():
        if fnmatch.fnmatchcase(check_id, pattern):
            return any(name in roles for name in pack_names)
    return True


def not_applicable_reason(check_id: str, pack_names: tuple[str, ...]) -> str:
    """Why a check is left out, in terms of the role: ``not part of the phone-agent client``."""
    what = " and ".join(WHAT_IT_IS.get(name, name) for name in pack_names)
    return f"not part of {what}"
