r"""Inspected text made safe to print: control characters shown, never obeyed by the terminal.

File names, distribution ``Name:`` fields, endpoint error bodies and model ids come from what
the doctor inspects; an ESC byte in one of them would recolour, move or clear the reader's
terminal (or hide a line). Every human format escapes them (:func:`escape_report`), the JSON
formats keep the data and write them as ``\uXXXX`` (:func:`escape_json_text`).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any, TypeVar

T = TypeVar("T")

_BIDI = [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SURROGATES = range(0xD800, 0xE000)
"""A file name's undecodable bytes, as Python reads them (``surrogateescape``): no encoder writes them."""
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, *_SURROGATES]
"""C0 controls but tab and newline, DEL, C1 controls, the bidirectional/line-separator marks, lone surrogates."""

_VISIBLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSAFE}
_VISIBLE[0x0D] = "\\r"
_JSON = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}
_NAME = {**_VISIBLE, 0x0A: "\\n", 0x09: "\\t"}

_WORKFLOW_COMMAND = re.compile(r"(^|\s)::")
"""``::`` where a CI runner would read a workflow command (``::error file=x::``): at a line's start, or after
a space where wrapping could start a line."""
_NAME_FIELDS = frozenset({"file", "config", "pack", "packs", "target", "environment"})
"""Fields that hold an inspected name (a location's file, the report's config, packs, target, environment)."""


def escape_control(text: str) -> str:
    r"""``text`` with every unsafe character written as a visible escape (``\x1b``); linear."""
    return text.translate(_VISIBLE)


def escape_name(text: str) -> str:
    r"""An inspected name (a file, a path) on one line: line feeds and tabs too as ``\n``, ``\t``."""
    return text.translate(_NAME)


def defuse_commands(text: str) -> str:
    r"""``text`` whose ``::`` can start no CI workflow command: written ``\x3a:`` where it could; linear."""
    return _WORKFLOW_COMMAND.sub(lambda m: m.group(1) + "\\x3a:", text) if "::" in text else text


def escape_json_text(text: str) -> str:
    r"""JSON text (from ``json.dumps``) with DEL, C1 and bidi characters as ``\uXXXX``: the same data."""
    return text.translate(_JSON)


def _walk(obj: Any, name: bool = False, defuse: bool = True) -> Any:
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        text = escape_name(obj) if name else escape_control(obj)
        return defuse_commands(text) if defuse else text
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: _walk(getattr(obj, f.name), name or f.name in _NAME_FIELDS, defuse)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_walk(v, name, defuse) for v in obj)
    if isinstance(obj, list):
        return [_walk(v, name, defuse) for v in obj]
    if isinstance(obj, dict):
        return {_walk(k, name, defuse): _walk(v, name, defuse) for k, v in obj.items()}
    return obj


def escape_report(report: T, *, defuse: bool = True) -> T:
    r"""A copy of a report (any dataclass tree) safe to print: control characters escaped in every string.

    Inspected names (a location's file, the config, the packs) stay on one line (line feeds and tabs
    escaped too), and no ``::`` is left where a CI runner would read a workflow command: a file named
    ``x\n::error file=x::INJECTED`` cannot put an annotation in the user's CI log, in any human format.
    ``defuse=False`` for the GitHub format, whose writer escapes every line break of the data itself
    (``%0A``), so that ``::`` there stays as written.
    """
    return _walk(report, False, defuse)  # type: ignore[no-any-return]
