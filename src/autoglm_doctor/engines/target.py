"""Which flag definitions of an engine a target gets: its installed files, else a generated table.

:func:`gather` runs on the host side while the snapshot is made; :func:`flags_for` is what checks
call, from the snapshot alone. Apart from ``engines/__init__.py`` because it reads the snapshot,
which the modules that build the snapshot import.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from autoglm_doctor import engines
from autoglm_doctor.engines import _spec, installed_flags, load_table, table_for
from autoglm_doctor.engines.base import EngineFlags
from autoglm_doctor.probe.libraries import ServedArchitectures
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name


def _installed_root(snap: Snapshot, name: str) -> str:
    """The first folder of the target's search path that holds the engine's package (``NAME/__init__.py``), or empty.

    The search path is the probe's (cwd left out: a server is not started from the engine's checkout).
    A replayed snapshot (``--snapshot``) from another machine finds nothing here: its registries were
    read where it was made.
    """
    python = snap.python
    search = list(python.sys_path)
    if search and python.cwd and search[0] == python.cwd:
        search = search[1:]
    for folder in search:
        if folder and Path(folder, name, "__init__.py").is_file():
            return folder
    return ""


def registries(snap: Snapshot) -> dict[str, ServedArchitectures]:
    """Host side, once per target: the architectures each installed engine serves, read by its own module."""
    found: dict[str, ServedArchitectures] = {}
    for name, engine in engines.ENGINES.items():
        root = _installed_root(snap, name)
        if root:
            found[name] = engine.read_registry(Path(root))
    return found


def installed_version(snap: Snapshot, name: str) -> str:
    """The version of the engine installed in the target, or empty."""
    dist = snap.effective().get(canonical_name(name))
    return dist.version if dist is not None else ""


def gather(snap: Snapshot) -> dict[str, EngineFlags]:
    """Host side, once per run: the launch command's engine, read from its files in the target.

    Only when the config is a launch command. Kept in the snapshot (``--snapshot`` replays it on
    another machine); a release's unchanged files keep only the name of its table.
    """
    config = snap.config
    name = config.engine if config is not None and config.parsed else ""
    version = installed_version(snap, name) if name else ""
    root = _installed_root(snap, name) if version else ""
    if not root or not Path(root, name).is_dir():
        return {}
    found = installed_flags(name, root, version)
    if found is None:
        return {}
    return {name: replace(found, flags=[]) if found.table else found}


def flags_for(snap: Snapshot, name: str, named_version: str = "") -> EngineFlags:
    """The engine's flag definitions: as read from its installed files, else a table.

    The table is that of the version installed, else named in the launch file, else the newest.
    """
    kept = snap.engines.get(name)
    if kept is not None:
        if kept.table and not kept.flags:
            return replace(kept, flags=[_spec(d) for d in load_table(name, kept.table)["flags"]])
        return kept
    version = installed_version(snap, name)
    line, why = table_for(name, version or named_version)
    if not version and named_version:
        why = why.replace(f"{name} {named_version} is named", f"{name} {named_version} is named in the launch file")
    elif version:
        why = f"{name} {version} is installed but its files were not read (not found where the probe saw it); " + (
            f"the table of {line}"
        )
    if not line:
        return EngineFlags(engine=name, version="", source="none", why=why)
    data = load_table(name, line)
    return EngineFlags(
        engine=name,
        version=str(data["version"]),
        source="table",
        why=why,
        flags=[_spec(d) for d in data["flags"]],
        files=[f"knowledge/engines/{name}-{line}.json"],
    )
