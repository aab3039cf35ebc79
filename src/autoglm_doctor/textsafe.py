r"""Inspected text made safe to print: control characters shown, never obeyed by the terminal.

File names, distribution ``Name:`` fields, endpoint error bodies and model ids come from what
the doctor inspects; an ESC byte in one of them would recolour, move or clear the reader's
terminal (or hide a line). Every human format escapes them (:func:`escape_report`), the JSON
formats keep the data and write them as ``\uXXXX`` (:func:`escape_json_text`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeVar

T = TypeVar("T")

_BIDI = [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI]
"""C0 controls but tab and newline, DEL, C1 controls, and the bidirectional/line-separator marks."""

_VISIBLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSAFE}
_VISIBLE[0x0D] = "\\r"
_JSON = {code: f"\\u{code:04x}" for code in _UNSAFE if code >= 0x7F}


def escape_control(text: str) -> str:
    r"""``text`` with every unsafe character written as a visible escape (``\x1b``); linear."""
    return text.translate(_VISIBLE)


def escape_json_text(text: str) -> str:
    r"""JSON text (from ``json.dumps``) with DEL, C1 and bidi characters as ``\uXXXX``: the same data."""
    return text.translate(_JSON)


def _walk(obj: Any) -> Any:
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        return escape_control(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _walk(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, tuple):
        return tuple(_walk(v) for v in obj)
    if isinstance(obj, list):
        return [_walk(v) for v in obj]
    if isinstance(obj, dict):
        return {_walk(k): _walk(v) for k, v in obj.items()}
    return obj


def escape_report(report: T) -> T:
    """A copy of a report (any dataclass tree) with every string's control characters escaped."""
    return _walk(report)  # type: ignore[no-any-return]
