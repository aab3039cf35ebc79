"""Safe YAML loading that remembers the line of every value, for errors that point somewhere.

Used for the doctor's own YAML (check packs and the knowledge base), where a mistake must be
reported as ``file:line: what is wrong``. Only plain YAML types are built: tags such as
``!!python/object`` are refused, never constructed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


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


def _build(node: yaml.Node, path: tuple[Any, ...], out: Positioned, loader: Any) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise YamlError(out.file, key_node.start_mark.line + 1, "mapping keys must be plain scalars")
            if key in result:
                raise YamlError(out.file, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            result[key] = _build(value_node, (*path, key), out, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


# libyaml's parser when PyYAML was built with it (several times faster); same safe constructors.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str, file: str) -> Positioned:
    """Parse one YAML document with positions; raises :class:`YamlError` naming file and line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        out = Positioned(data=None, file=file)
        if node is not None:
            out.data = _build(node, (), out, loader)
        return out
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlError(file, line, f"{exc.problem or exc.context or 'invalid YAML'}") from exc
    except yaml.YAMLError as exc:
        raise YamlError(file, None, str(exc)) from exc
    finally:
        loader.dispose()


def load_file(path: Path) -> Positioned:
    """Read and parse a YAML file with positions."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise YamlError(str(path), None, f"not UTF-8 (byte {exc.start})") from exc
    return load(text, str(path))
