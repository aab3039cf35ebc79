"""Typed access to vllm.yaml: the exact torch (and the transformers/Python ranges) each vLLM release pins."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor.knowledge import load_table


@dataclass(frozen=True, slots=True)
class VllmPin:
    """What one range of vLLM releases requires."""

    versions: SpecifierSet
    """The vLLM versions the row covers."""
    torch: str
    """The exact torch version they pin."""
    python: SpecifierSet
    """Their Requires-Python."""
    transformers: SpecifierSet
    """The transformers range they ask for (empty: none recorded)."""
    confidence: str
    """high, medium or low."""


@cache
def vllm_pins() -> tuple[VllmPin, ...]:
    """Every row of the vLLM table."""
    doc = load_table("vllm")
    rows = []
    for i, row in enumerate(doc.data["pins"]):
        where = ("pins", i)
        try:
            rows.append(
                VllmPin(
                    versions=SpecifierSet(str(row["vllm"])),
                    torch=str(Version(str(row["torch"]))),
                    python=SpecifierSet(str(row.get("python") or "")),
                    transformers=SpecifierSet(str(row.get("transformers") or "")),
                    confidence=str(row.get("confidence", "high")),
                )
            )
        except (InvalidSpecifier, InvalidVersion, KeyError) as exc:
            raise doc.error(where, f"malformed vllm pin: {exc}") from None
    return tuple(rows)


def vllm_pin(version: str) -> VllmPin | None:
    """The row covering a vLLM version, or None when the knowledge base lacks it."""
    try:
        v = Version(version)
    except InvalidVersion:
        return None
    return next((r for r in vllm_pins() if r.versions.contains(v, prereleases=True)), None)
