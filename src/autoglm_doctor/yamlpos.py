"""Safe YAML loading that remembers the line of every value, for errors that point somewhere.

Used for the doctor's own YAML (check packs and the knowledge base), where a mistake must be
reported as ``file:line: what is wrong``. It reads with the one YAML reader that configs use, so
only plain YAML types are built: tags such as ``!!python/object`` are refused, never constructed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class YamlError(ValueError):
    """A YAML document is malformed or has the wrong shape; ``str()`` names file and line."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


@dataclass
class Positioned:
    """Parsed data plus the 1-based line of each value, keyed by its path tuple."""

    data: Any
    """Plain Python data (dicts, lists, scalars)."""
    file: str
    """Where it came from."""
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    """Path (keys and indexes) -> line."""

    def line(self, path: tuple[Any, ...]) -> int | None:
        """Line of the value at ``path``, or of its nearest parent that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(self, path: tuple[Any, ...], message: str) -> YamlError:
        """An error pointing at the value at ``path``."""
        return YamlError(self.file, self.line(path), message)


def load(text: str, file: str) -> Positioned:
    """Parse one YAML document with positions; raises :class:`YamlError` naming file and line.

    The config reader's YAML reader (:func:`autoglm_doctor.configfile.parse.parse_yaml`) does the
    work, with positions at every depth; anything it reports as an error (a syntax error, a
    duplicate or complex key, an unsafe tag, an alias bomb) is raised.
    """
    from autoglm_doctor.configfile.parse import Source, guarded, parse_yaml

    parsed = guarded(Source(text), lambda source: parse_yaml(source, depth=None))
    for problem in parsed.diagnostics:
        if problem.severity == "error":
            raise YamlError(file, problem.line, problem.message)
    return Positioned(
        data=parsed.data, file=file, lines={path: line for path, (line, _column) in parsed.places.items()}
    )


def load_file(path: Path, kind: str = "pack") -> Positioned:
    """Read (bounded: :data:`autoglm_doctor.safeio.LIMITS`) and parse a YAML file with positions."""
    from autoglm_doctor.safeio import read_text

    try:
        text = read_text(path, kind)
    except OSError as exc:
        raise YamlError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise YamlError(str(path), None, f"not UTF-8 (byte {exc.start})") from exc
    return load(text, str(path))
