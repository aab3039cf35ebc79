"""What transformers and the torch family state about themselves: installed files first, then tables.

The installed library's own files, read as text by the probe (:mod:`autoglm_doctor.probe.libraries`),
are the first source: they are never stale. Where the library is absent or its files could not be
read (a snapshot from elsewhere, a damaged install), the fallback is ``transformers_registry.yaml``
and ``torch_family.yaml``, which ``tools/knowledge_tables.py`` generates from released wheels; they
are never edited by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor.knowledge import table_path
from autoglm_doctor.knowledge.gpu import index_url

if TYPE_CHECKING:
    from autoglm_doctor.probe.snapshot import Snapshot

GENERATOR = "tools/knowledge_tables.py"


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


@cache
def generated_table(name: str) -> dict[str, Any]:
    """A generated table, as plain data.

    Read with PyYAML's C-accelerated safe loader, not :func:`autoglm_doctor.knowledge.load_table`:
    a generated table is never edited by hand, so no finding ever points at one of its lines, and
    the ~850-row registry table loads in about 12 ms this way against about 200 ms with positions
    recorded (measured on the 2-core test VM).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(table_path(name), encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(data, dict) or not data.get("sources"):
        raise ValueError(f"knowledge/{name}.yaml: a knowledge table is a mapping with a non-empty 'sources' list")
    return data


# --- transformers ------------------------------------------------------------------------------


def releases_read() -> list[str]:
    """The transformers releases the registry table was generated from, oldest first."""
    return [str(v) for v in generated_table("transformers_registry")["releases"]]


def first_release_knowing(model_type: str) -> str | None:
    """The first release read whose registry knows ``model_type``; None when none read does."""
    found = generated_table("transformers_registry")["model_types"].get(model_type)
    return str(found) if found else None


def first_release_with_video_processor(model_type: str) -> str | None:
    """The first release read that maps ``model_type`` to a video processor; None when none does."""
    found = generated_table("transformers_registry")["video_processors"].get(model_type)
    return str(found) if found else None


def release_row(version: str) -> str | None:
    """The newest release read that is not newer than ``version`` (the table row that covers it)."""
    wanted = _version(version)
    if wanted is None:
        return None
    older = [v for v in releases_read() if (_version(v) or wanted) <= wanted]
    return older[-1] if older else None


@dataclass(frozen=True, slots=True)
class Floor:
    """The lowest version of a package that the installed transformers accepts."""

    package: str
    """Distribution name (``accelerate``)."""
    version: str
    """The floor (``0.26.0``)."""
    source: str
    """Where it was read: the installed file, or the generated table and its row."""


def _floor_from(
    package: str, min_versions: dict[str, str], dependencies: dict[str, str], where: str, table: bool
) -> Floor | None:
    key = package.lower().replace("-", "_")
    if key in min_versions:
        constant = f"{key.upper()}_MIN_VERSION"
        return Floor(package, min_versions[key], f"{constant} in {where}")
    for name, text in dependencies.items():
        if name.lower().replace("-", "_") != key:
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return None
        floors = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        if floors:
            table_file = "dependency_versions_table.py" + (f" ({where})" if table else f" in {where}")
            return Floor(package, floors[0], f"{text!r}, {table_file}")
    return None


def transformers_floor(snap: Snapshot, package: str) -> Floor | None:
    """The floor the installed transformers sets for ``package`` (``accelerate``).

    ``ACCELERATE_MIN_VERSION`` (and its friends) in transformers/utils/import_utils.py is what
    transformers checks at run time (device_map needs accelerate at that version); releases that
    have no such constant state their floor in dependency_versions_table.py. The installed files
    first; the generated table's row for the installed version when they were not read.
    """
    files = snap.libraries.transformers if snap.libraries is not None else None
    if files is not None and (files.min_versions or files.dependencies):
        return _floor_from(package, files.min_versions, files.dependencies, files.path, table=False)
    installed = snap.effective().get("transformers")
    if installed is None:
        return None
    row = release_row(installed.version)
    if row is None:
        return None
    data = generated_table("transformers_registry")["floors"][row]
    where = f"knowledge/transformers_registry.yaml, row {row} (generated from the released wheel)"
    return _floor_from(package, data.get("min_versions") or {}, data.get("dependencies") or {}, where, table=True)


# --- the torch family --------------------------------------------------------------------------

TORCH_FAMILY = ("torchvision", "torchaudio")
"""Distributions built against one torch release and build."""


@cache
def family_requirements() -> dict[str, dict[str, SpecifierSet]]:
    """For each member and release, the torch versions it accepts (from its metadata; empty: none)."""
    out: dict[str, dict[str, SpecifierSet]] = {}
    for member, rows in generated_table("torch_family")["members"].items():
        out[str(member)] = {str(version): SpecifierSet(str(spec or "")) for version, spec in rows.items()}
    return out


def paired_version(member: str, torch_version: str) -> str | None:
    """The newest ``member`` release made for ``torch_version`` (its metadata's torch range holds it).

    Releases that pin one torch exactly win over those that accept a range. None when no release
    read names this torch.
    """
    torch = _version(torch_version.partition("+")[0])
    if torch is None:
        return None
    rows = family_requirements().get(member, {})
    fitting = [(v, spec) for v, spec in rows.items() if str(spec) and spec.contains(torch, prereleases=True)]
    exact = [v for v, spec in fitting if any(s.operator == "==" for s in spec)]
    chosen = exact or [v for v, _ in fitting]
    return max(chosen, key=Version) if chosen else None


def torch_lines() -> dict[str, str]:
    """Map torch ``major.minor`` to the torchvision ``0.N`` line whose releases pin it."""
    out: dict[str, str] = {}
    for version, spec in family_requirements().get("torchvision", {}).items():
        for item in spec:
            if item.operator == "==":
                torch, vision = Version(item.version), Version(version)
                out[f"{torch.major}.{torch.minor}"] = f"{vision.major}.{vision.minor}"
    return out


def _pins_one_torch(member: str, version: str) -> bool:
    spec = family_requirements().get(member, {}).get(version)
    return spec is not None and any(s.operator == "==" for s in spec)


def family_pin(member: str, torch_version: str, variant: str, installed: str = "") -> str:
    """``torchvision==0.28.0+cpu``: the release paired with this torch, in this torch's build.

    ``variant`` is torch's local label (``cpu``, ``cu130``, ``rocm6.2``) or empty for PyPI's own
    build. A release that pins one torch is compiled against it and gets the label; one that
    accepts a range (torchaudio from 2.11.1 is pure Python) does not. Without a paired release in
    the table, the installed member's public version is kept.
    """
    version = paired_version(member, torch_version) or installed.partition("+")[0]
    if not version:
        return member
    known = version in family_requirements().get(member, {})
    compiled = _pins_one_torch(member, version) if known else "+" in installed
    label = variant if variant and compiled else ""
    return f"{member}=={version}+{label}" if label else f"{member}=={version}"


def family_index(pin: str) -> str:
    """The wheel index a :func:`family_pin` requirement installs from (torch's own); empty for PyPI."""
    label = pin.partition("+")[2]
    return index_url(label) if label else ""
