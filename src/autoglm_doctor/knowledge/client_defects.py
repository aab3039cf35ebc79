"""Known defects of the phone-agent client, read from ``client_defects.yaml``, and where a client has them.

The client's source is read as text (at most :data:`SOURCE_MAX_BYTES` a file) and matched against each
defect's pattern; nothing of the client is imported or run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from autoglm_doctor.knowledge import load_table

SOURCE_MAX_BYTES = 1 << 20
"""Open-AutoGLM's main.py is 30 KB: a bigger file is not the client's."""


@dataclass(frozen=True, slots=True)
class ClientDefect:
    """One known defect of the client, as the knowledge table states it."""

    id: str
    """Stable name of the defect."""
    file: str
    """The file that has it, relative to the client's checkout."""
    pattern: re.Pattern[str]
    """Matches the defective code."""
    applies_when: str
    """The machine condition under which it bites (``several-adb-devices``)."""
    affected: str
    """Which releases have it."""
    message: str
    """What it does here; ``{file}``, ``{line}`` and the condition's own fields are filled in."""
    workaround: str
    """What to do until the client is fixed."""
    sources: tuple[str, ...]
    """Where the defect is reported and seen."""


@dataclass(frozen=True, slots=True)
class Found:
    """A defect found in one client checkout."""

    defect: ClientDefect
    """The defect."""
    path: Path
    """The file it was found in."""
    line: int
    """1-based line of the match."""


@cache
def defects() -> tuple[ClientDefect, ...]:
    """Every known client defect (the table is validated where it is read)."""
    doc = load_table("client_defects")
    out = []
    for i, row in enumerate(doc.data.get("defects") or []):
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) for k in ("id", "file", "pattern", "applies_when", "message", "workaround")
        ):
            raise doc.error(("defects", i), "a defect needs id, file, pattern, applies_when, message and workaround")
        out.append(
            ClientDefect(
                id=row["id"],
                file=row["file"],
                pattern=re.compile(row["pattern"]),
                applies_when=row["applies_when"],
                affected=str(row.get("affected") or ""),
                message=" ".join(row["message"].split()),
                workaround=" ".join(row["workaround"].split()),
                sources=tuple(str(s) for s in row.get("sources") or ()),
            )
        )
    return tuple(out)


def client_checkouts(sys_path: list[str], cwd: str) -> list[Path]:
    """Open-AutoGLM checkouts the client may run from: folders with ``main.py`` beside ``phone_agent/``.

    The working directory (``python main.py`` from the clone) and the target's path entries (an editable
    install puts the clone itself on ``sys.path``).
    """
    found: list[Path] = []
    for entry in [cwd, *sys_path]:
        if not entry:
            continue
        root = Path(entry)
        if (root / "phone_agent").is_dir() and (root / "main.py").is_file() and root not in found:
            found.append(root)
    return found


def found_in(checkouts: list[Path], condition: str) -> list[Found]:
    """The defects of ``condition`` that these checkouts' source has."""
    from autoglm_doctor.safeio import read_bytes

    hits: list[Found] = []
    for defect in defects():
        if defect.applies_when != condition:
            continue
        for root in checkouts:
            path = root / defect.file
            try:
                text = read_bytes(path, "config", SOURCE_MAX_BYTES).decode("utf-8", errors="replace")
            except OSError:
                continue
            match = defect.pattern.search(text)
            if match is not None:
                hits.append(Found(defect, path, text.count("\n", 0, match.start()) + 1))
    return hits


@dataclass(frozen=True, slots=True)
class SourceDefault:
    """The default a client's ``main.py`` gives an environment variable, read from its source."""

    value: str
    """The default (``os.getenv(NAME, "EMPTY")``'s second argument)."""
    path: Path
    """The main.py it was read from."""
    line: int
    """1-based line of the ``os.getenv`` call."""


def source_default(checkouts: list[Path], variable: str) -> SourceDefault | None:
    """The string default ``main.py`` of the first checkout that has one gives ``variable``; None when none does.

    ``os.getenv(variable, "...")`` and ``os.environ.get(variable, "...")`` are found in the syntax tree of
    the file read as text (at most :data:`SOURCE_MAX_BYTES`), never imported.
    """
    import ast

    from autoglm_doctor.safeio import read_bytes

    for root in checkouts:
        path = root / "main.py"
        try:
            tree = ast.parse(read_bytes(path, "config", SOURCE_MAX_BYTES).decode("utf-8", errors="replace"))
        except (OSError, SyntaxError, ValueError, RecursionError):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) == 2):
                continue
            if node.func.attr not in ("getenv", "get"):
                continue
            name, default = node.args
            if (
                isinstance(name, ast.Constant)
                and name.value == variable
                and isinstance(default, ast.Constant)
                and isinstance(default.value, str)
            ):
                return SourceDefault(default.value, path, node.lineno)
    return None


_SETUP_VERSION = re.compile(r"""\bversion\s*=\s*["']([^"'\s]{1,64})["']""")


def checkout_version(root: Path) -> str | None:
    """The version a checkout's setup.py states (``version="0.1.0"``), read as text; None when it states none."""
    from autoglm_doctor.safeio import read_bytes

    try:
        text = read_bytes(root / "setup.py", "config", SOURCE_MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    found = _SETUP_VERSION.search(text)
    return found.group(1) if found is not None else None
