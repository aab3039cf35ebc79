"""Environment-variable interpolation in config values, with the place of every reference.

Accepted forms (the same inside YAML, JSON, TOML and launch-flag files):

``${NAME}``
    The value of NAME. Unset is an error (config.env-unset); set but empty warns.
``${NAME:-default}``
    The value of NAME when it is set and not empty, else ``default`` (as in the shell).
``${NAME:default}``
    Shorthand accepted for the same thing as ``${NAME:-default}``.
``${NAME-default}``
    The value of NAME when it is set, even to an empty string, else ``default`` (as in the shell).
``$${``
    A literal ``${`` (no interpolation).

NAME is a letter or underscore followed by letters, digits and underscores. A bare ``$NAME`` is
not interpolated (config.env warns: write ``${NAME}``), except in a shell launch file (``shell``),
where the shell expands ``$NAME`` and ``"$NAME"`` as it does ``${NAME}``. A value that is
exactly one reference and whose result reads as a number or ``true``/``false`` becomes that type
(``port: ${PORT}`` gives an integer).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BARE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``${...}`` in a string."""

    start: int
    """Offset of the ``$`` in the string."""
    end: int
    """Offset just past the closing brace (or the end of the string when unclosed)."""
    name: str
    """The variable name as written (may be invalid)."""
    default: str | None = None
    """The default, when the reference has one."""
    problem: str = ""
    """``unclosed`` or ``invalid-name``; empty when well formed."""
    unset_only: bool = False
    """``${NAME-default}``: the default applies only when NAME is unset (not when empty)."""


MAX_REFERENCES = 1000
"""A string with more ``${`` than this is left as written (no real value has that many)."""
UNCLOSED_SHOWN = 40
"""Characters of an unclosed reference's text kept (``${`` x 20000 once made an 808 MB report)."""


_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def references(text: str, *, shell: bool = False) -> Iterator[Reference]:
    """Every ``${...}`` reference in ``text`` (``$${`` escapes are skipped); with ``shell``, every ``$NAME`` too.

    Linear in ``text``: the next ``}`` and newline are found once and reused until passed, and
    an unclosed reference ends at the next ``$`` (its shown text at :data:`UNCLOSED_SHOWN`).
    """
    close, newline = -2, -2
    i = text.find("$")
    while i >= 0:
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            i = text.find("$", i + 2)
            continue
        if nxt != "{":
            bare = _SHELL_NAME.match(text, i + 1) if shell else None
            if bare is not None:  # the shell expands $NAME as it does ${NAME}
                yield Reference(i, bare.end(), bare.group())
            i = text.find("$", i + 1)
            continue
        if close != -1 and close < i + 2:
            close = text.find("}", i + 2)
        if newline != -1 and newline < i + 2:
            newline = text.find("\n", i + 2)
        if close < 0 or (0 <= newline < close):
            end = newline if newline >= 0 else len(text)
            following = text.find("$", i + 2, end)
            end = following if following >= 0 else end
            yield Reference(i, end, text[i + 2 : min(end, i + 2 + UNCLOSED_SHOWN)].strip(), problem="unclosed")
            i = text.find("$", i + 2)
            continue
        body = text[i + 2 : close]
        name, sep, rest = body.partition(":")
        default: str | None = None
        unset_only = False
        if sep:
            default = rest[1:] if rest.startswith("-") else rest
        elif "-" in body and NAME.match(body.partition("-")[0]):
            name, _, default = body.partition("-")
            unset_only = True
        problem = "" if NAME.match(name) else "invalid-name"
        yield Reference(i, close + 1, name, default, problem, unset_only)
        i = text.find("$", close + 1)


def _typed(text: str) -> object:
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def expand(value: str, environ: Mapping[str, str], *, shell: bool = False) -> tuple[object, list[str]]:
    """The interpolated value and the variables it read; unresolvable references stay as written.

    ``shell``: the value is a word of a shell launch file, where ``$NAME`` is expanded too.
    """
    refs = list(islice(references(value, shell=shell), MAX_REFERENCES + 1))
    if len(refs) > MAX_REFERENCES:  # not a real value: left as written, not interpolated
        return value, []
    if not refs:
        return value.replace("$${", "${"), []
    out: list[str] = []
    names: list[str] = []
    pos = 0
    for ref in refs:
        out.append(value[pos : ref.start].replace("$${", "${"))
        pos = ref.end
        if ref.problem:
            out.append(value[ref.start : ref.end])
            continue
        names.append(ref.name)
        current = environ.get(ref.name)
        if ref.unset_only and current is not None:
            out.append(current)
        elif current:
            out.append(current)
        elif ref.default is not None:
            out.append(ref.default)
        elif current is not None:
            out.append("")
        else:
            out.append(value[ref.start : ref.end])
    out.append(value[pos:].replace("$${", "${"))
    result = "".join(out)
    whole = len(refs) == 1 and refs[0].start == 0 and refs[0].end == len(value) and not refs[0].problem
    return (_typed(result) if whole else result), names


def is_bare_reference(value: str) -> bool:
    """``$NAME`` alone: looks like a reference but is not interpolated."""
    return bool(_BARE.match(value))
