"""Typed access to the Python and package tables: torch.yaml, transformers.yaml, combinations.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor import yamlpos
from autoglm_doctor.knowledge import load_table


@dataclass(frozen=True, slots=True)
class TorchRelease:
    """One torch release line and the Python versions it ships wheels for."""

    line: str
    """``major.minor``, e.g. ``2.1``."""
    python: SpecifierSet
    """Python versions with official wheels."""
    confidence: str
    """high, medium or low."""


@dataclass(frozen=True, slots=True)
class TransformersRelease:
    """One transformers release range and what it needs."""

    versions: SpecifierSet
    """The transformers versions this row covers."""
    python: SpecifierSet
    """Requires-Python of those releases."""
    torch: SpecifierSet
    """What the ``[torch]`` extra asks for."""
    runtime_torch: str
    """The torch floor it enforces at import (empty when none)."""
    huggingface_hub: SpecifierSet
    """The huggingface_hub range it checks at import."""
    confidence: str
    """high, medium or low."""


@dataclass(frozen=True, slots=True)
class Combination:
    """A known-bad combination of installed distributions."""

    id: str
    """Stable id of the row."""
    when: dict[str, SpecifierSet]
    """Distribution name -> versions that, together, break."""
    platform: str
    """``sys.platform`` the row is limited to; empty for all."""
    severity: str
    """error or warning."""
    message: str
    """Template; ``{name}`` is the installed version of that distribution."""
    symptom: str
    """The error text users meet."""
    install: tuple[str, ...]
    """Requirements whose installation fixes it."""
    alternative: str
    """The other way out, in words."""
    confidence: str
    """high, medium or low."""


def _specifier(doc: yamlpos.Positioned, path: tuple[object, ...], text: object) -> SpecifierSet:
    try:
        return SpecifierSet(str(text or ""))
    except InvalidSpecifier:
        raise doc.error(path, f"{text!r} is not a version range") from None


@cache
def torch_releases() -> tuple[TorchRelease, ...]:
    """Every torch release line in the knowledge base."""
    doc = load_table("torch")
    return tuple(
        TorchRelease(
            line=str(row["torch"]),
            python=_specifier(doc, ("releases", i, "python"), row["python"]),
            confidence=str(row.get("confidence", "high")),
        )
        for i, row in enumerate(doc.data["releases"])
    )


def torch_release(version: str) -> TorchRelease | None:
    """The release line a torch version belongs to, or None when the knowledge base lacks it."""
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    line = f"{v.major}.{v.minor}"
    return next((r for r in torch_releases() if r.line == line), None)


def torchvision_pairs() -> dict[str, str]:
    """Torch ``major.minor`` -> the torchvision ``0.N`` line built for it (from torch_family.yaml)."""
    from autoglm_doctor.knowledge.libraries import torch_lines

    return torch_lines()


@cache
def transformers_releases() -> tuple[TransformersRelease, ...]:
    """Every transformers release range in the knowledge base."""
    doc = load_table("transformers")
    rows = []
    for i, row in enumerate(doc.data["releases"]):
        where = ("releases", i)
        rows.append(
            TransformersRelease(
                versions=_specifier(doc, (*where, "versions"), row["versions"]),
                python=_specifier(doc, (*where, "python"), row.get("python")),
                torch=_specifier(doc, (*where, "torch"), row.get("torch")),
                runtime_torch=str(row.get("runtime_torch") or ""),
                huggingface_hub=_specifier(doc, (*where, "huggingface_hub"), row.get("huggingface_hub")),
                confidence=str(row.get("confidence", "high")),
            )
        )
    return tuple(rows)


def transformers_release(version: str) -> TransformersRelease | None:
    """The row covering a transformers version, or None."""
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    return next((r for r in transformers_releases() if r.versions.contains(v, prereleases=True)), None)


@cache
def combinations() -> tuple[Combination, ...]:
    """Every known-bad combination."""
    doc = load_table("combinations")
    rows = []
    for i, row in enumerate(doc.data["combinations"]):
        where = ("combinations", i)
        when = row.get("when")
        if not isinstance(when, dict) or not when:
            raise doc.error((*where, "when"), "'when' maps distribution names to version ranges")
        rows.append(
            Combination(
                id=str(row["id"]),
                when={str(k): _specifier(doc, (*where, "when", k), v) for k, v in when.items()},
                platform=str(row.get("platform") or ""),
                severity=str(row.get("severity", "error")),
                message=str(row["message"]),
                symptom=str(row.get("symptom") or ""),
                install=tuple(str(r) for r in row.get("install") or ()),
                alternative=str(row.get("alternative") or ""),
                confidence=str(row.get("confidence", "high")),
            )
        )
    return tuple(rows)
