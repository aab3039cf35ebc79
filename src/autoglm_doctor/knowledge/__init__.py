"""The knowledge base: YAML facts about the world, each table with its sources.

Checks read versions from here, never from literals in code. Each ``*.yaml`` file in this
folder is one table family; typed accessors live beside it (``packages.py`` for Python and
package facts). Rows with ``confidence: low`` say so in what the doctor prints.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from autoglm_doctor import yamlpos

_FOLDER = Path(__file__).parent
"""This package's folder (what ``importlib.resources.files`` gives for it, without its import cost)."""


def table_path(name: str) -> Path:
    """Path of the knowledge table ``name`` (without ``.yaml``)."""
    return _FOLDER / f"{name}.yaml"


@cache
def load_table(name: str) -> yamlpos.Positioned:
    """Parse a knowledge table once per process; every table must name its sources."""
    doc = yamlpos.load_file(table_path(name))
    if not isinstance(doc.data, dict) or not doc.data.get("sources"):
        raise doc.error((), "a knowledge table is a mapping with a non-empty 'sources' list")
    return doc


def table_names() -> list[str]:
    """Every table shipped in the knowledge base."""
    return sorted(p.stem for p in _FOLDER.glob("*.yaml"))


def confidence_note(confidence: str | None) -> str:
    """What a finding adds when its fact is not well established."""
    if confidence == "low":
        return " (knowledge-base row of low confidence: verify before relying on it)"
    return ""
