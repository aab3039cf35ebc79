"""Which flag definitions of an engine a target gets: its installed files, else a generated table.

Apart from ``engines/__init__.py`` because it reads the snapshot, which the gatherers that build the
snapshot must not import back.
"""

from __future__ import annotations

from pathlib import Path

from autoglm_doctor.engines import _spec, installed_flags, load_table, table_for
from autoglm_doctor.engines.base import EngineFlags
from autoglm_doctor.probe.snapshot import Snapshot, canonical_name


def _installed_root(snap: Snapshot, name: str) -> str:
    libraries = snap.libraries
    served = getattr(libraries, name, None) if libraries is not None else None
    path = getattr(served, "path", "") if served is not None else ""
    if not path:
        return ""
    parts = Path(path).parts
    return str(Path(*parts[: parts.index(name)])) if name in parts else ""


def installed_version(snap: Snapshot, name: str) -> str:
    """The version of the engine installed in the target, or empty."""
    dist = snap.effective().get(canonical_name(name))
    return dist.version if dist is not None else ""


def flags_for(snap: Snapshot, name: str, named_version: str = "") -> EngineFlags:
    """The engine's flag definitions: its installed files, else the table of the version installed or named."""
    version = installed_version(snap, name)
    root = _installed_root(snap, name)
    if version and root and Path(root, name).is_dir():
        found = installed_flags(name, root, version)
        if found is not None:
            return found
    line, why = table_for(name, version or named_version)
    if not version and named_version:
        why = why.replace(f"{name} {named_version} is named", f"{name} {named_version} is named in the launch file")
    if version and not root:
        why = f"{name} {version} is installed but its files were not read here; the table of {line}"
    elif version:
        why = f"{name} {version} is installed but its files are not on this machine; the table of {line}"
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
