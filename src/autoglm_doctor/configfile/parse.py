"""Parse YAML, JSON, TOML and launch-flag files into plain data with the position of every key.

Nothing here executes what it reads: YAML is composed into nodes with the safe loader and
built by one walk over them, so a ``!!python/...`` tag is reported and its value is never
constructed.
Positions are ``[line, column]`` (1-based) keyed by dotted path, recorded down to
:data:`POSITION_DEPTH` levels; deeper values are still parsed and checked for duplicates.
"""

from __future__ import annotations

import bisect
import importlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from json.scanner import make_scanner
from shlex import quote
from typing import Any

import yaml

from autoglm_doctor.configfile.facts import Diagnostic

POSITION_DEPTH = 2
"""Positions are recorded for keys this many levels deep (``model.device_map``, ``3`` for list items)."""
ALIAS_EXPANSION_LIMIT = 200_000
"""A YAML document whose aliases expand to more values than this is refused (a "billion laughs")."""

SYNTAX = "config.syntax"
_SAFE_TAGS = {
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary", "set", "omap", "pairs")
}
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Source:
    """The decoded text of a file, with offset -> line/column and excerpts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines: list[int] | None = None
        self._line_count: int | None = None
        self._last = (0, 1, 0)  # (offset, its line, offset where that line starts): positions mostly come in order

    @property
    def newlines(self) -> list[int]:
        """Offsets of every newline (computed once)."""
        if self._newlines is None:
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        return self._newlines

    @property
    def line_count(self) -> int:
        """Number of lines (a final line without newline counts)."""
        if not self.text:
            return 0
        if self._line_count is None:  # counted once: every diagnostic asks (config.env made thousands)
            self._line_count = self.text.count("\n") + (0 if self.text.endswith("\n") else 1)
        return self._line_count

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        last_offset, last_line, last_start = self._last
        if offset >= last_offset and self._newlines is None:
            line = last_line + self.text.count("\n", last_offset, offset)
            start = self.text.rfind("\n", last_start, offset) + 1 if line != last_line else last_start
            self._last = (offset, line, start)
            return line, offset - start + 1
        line = bisect.bisect_left(self.newlines, offset)
        start = self.newlines[line - 1] + 1 if line else 0
        return line + 1, offset - start + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        nl = self.newlines
        if line < 1 or line > len(nl) + 1:
            return ""
        start = nl[line - 2] + 1 if line >= 2 else 0
        end = nl[line - 1] if line - 1 < len(nl) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def excerpt(self, line: int | None, column: int | None) -> str:
        """The line (shortened around the column) and a caret under the column."""
        if line is None:
            return ""
        text = self.line_text(line)
        col = max(1, column or 1)
        start = max(0, col - 60)
        shown = text[start : start + 110]
        prefix = "…" if start else ""
        visible = shown.replace("\t", "→")
        caret = " " * (len(prefix) + col - 1 - start) + "^"
        return f"{prefix}{visible}\n{caret}"


@dataclass
class Parsed:
    """What a parser produced: the data, positions and diagnostics."""

    data: Any = None
    """The parsed document (None when it did not parse)."""
    positions: dict[str, list[int]] = field(default_factory=dict)
    """Dotted key -> ``[line, column]``."""
    places: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    """Key path (keys and list indexes) -> ``(line, column)``; YAML only, ``()`` is the document."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    """Problems, in the order they were found."""
    words: list[list[Any]] = field(default_factory=list)
    """A launch command's words after the shell's splitting, each ``[word, line, column]`` (flags only);
    ``[None, line, column]`` marks where a command ends (an unescaped newline, ``;``, ``&``, ``|``)."""


def dotted(path: tuple[Any, ...]) -> str:
    """The dotted form of a key path (list indexes as numbers)."""
    return ".".join(str(p) for p in path)


def diag(
    source: Source,
    code: str,
    message: str,
    line: int | None,
    column: int | None,
    *,
    severity: str = "error",
    fix: str = "",
    expected: str = "",
    key: str = "",
    check: str = SYNTAX,
) -> Diagnostic:
    """A diagnostic with its excerpt (a place past the end is moved to the end of the last line)."""
    last = source.line_count
    if line is not None and last and line > last:
        line, column = last, len(source.line_text(last)) + 1
    return Diagnostic(
        check=check,
        code=code,
        severity=severity,
        message=message,
        line=line,
        column=column,
        excerpt=source.excerpt(line, column),
        fix=fix,
        expected=expected,
        key=key,
    )


# --------------------------------------------------------------------------- encoding


def decode(raw: bytes, source_name: str) -> tuple[str, list[Diagnostic]]:
    """Decode bytes as UTF-8: a BOM is noted and dropped, bad bytes are reported with their place."""
    found: list[Diagnostic] = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        empty = Source("")
        found.append(
            diag(
                empty,
                "config.encoding",
                f"{source_name} is UTF-16 (it starts with a UTF-16 byte-order mark); configs must be UTF-8",
                1,
                1,
                fix=f"iconv -f UTF-16 -t UTF-8 {quote(source_name)} > fixed && mv fixed {quote(source_name)}",
                expected="UTF-8 text",
            )
        )
        return "", found
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        found.append(
            diag(
                Source(""),
                "config.bom",
                "the file starts with a UTF-8 byte-order mark (BOM); some loaders read it as part of the first key",
                1,
                1,
                severity="warning",
                fix=f"sed -i '1s/^\\xEF\\xBB\\xBF//' {quote(source_name)}",
                expected="UTF-8 without BOM",
            )
        )
    try:
        return raw.decode("utf-8"), found
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        good = raw[: exc.start].decode("utf-8", errors="replace")
        src = Source(text)
        line, column = src.position(len(good))
        found.append(
            diag(
                src,
                "config.encoding",
                f"byte 0x{raw[exc.start]:02x} at line {line}, column {column} is not UTF-8 "
                "(the file was saved in another encoding, e.g. Latin-1 or GBK)",
                line,
                column,
                fix=f"iconv -f GBK -t UTF-8 {quote(source_name)} > fixed && mv fixed {quote(source_name)}"
                "  (name the real encoding)",
                expected="UTF-8 text",
            )
        )
        return text, found


# --------------------------------------------------------------------------- YAML

_BLOCK_SCALAR = re.compile(r"[:\-]\s*[|>][0-9+\-]*\s*(#.*)?$")


def _tab_lines(source: Source) -> Iterator[tuple[int, int]]:
    """(line, column) of every tab in a line's indentation, outside block scalars."""
    if "\t" not in source.text:
        return
    block_indent: int | None = None
    for number, line in enumerate(source.text.split("\n"), start=1):
        stripped = line.lstrip(" \t")
        indent_text = line[: len(line) - len(stripped)]
        if block_indent is not None:
            if not stripped.strip():
                continue
            spaces = len(indent_text) - len(indent_text.lstrip(" "))
            if spaces > block_indent:
                continue
            block_indent = None
        if "\t" in indent_text and stripped.strip():
            yield number, indent_text.index("\t") + 1
        if _BLOCK_SCALAR.search(line.rstrip("\r")):
            block_indent = len(line) - len(line.lstrip(" "))


class _YamlBuilder:
    """One walk over the composed node tree: plain data, positions and the problems found on the way."""

    def __init__(self, source: Source, loader: Any, depth: int | None) -> None:
        self.source = source
        self.loader = loader
        self.depth = depth
        self.places: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.out = Parsed()
        self.memo: dict[int, Any] = {}
        self.active: set[int] = set()
        self.sizes: dict[int, int] = {}

    def expanded_size(self, node: yaml.Node) -> int:
        """How many values the node stands for once aliases are expanded (cycles count once)."""
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        on_path: set[int] = set()
        while stack:
            current, done = stack.pop()
            key = id(current)
            if done:
                on_path.discard(key)
                children = self._children(current)
                self.sizes[key] = 1 + sum(self.sizes.get(id(c), 1) for c in children)
                continue
            if key in self.sizes or key in on_path:
                continue
            on_path.add(key)
            stack.append((current, True))
            stack.extend((c, False) for c in self._children(current) if id(c) not in self.sizes)
        return self.sizes.get(id(node), 1)

    @staticmethod
    def _children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        return []

    def keeps_place(self, path: tuple[Any, ...]) -> bool:
        """Whether the position of the value at ``path`` is recorded."""
        return self.depth is None or len(path) <= self.depth

    def place(self, node: yaml.Node) -> tuple[int, int]:
        """1-based line and column of a node, never past the last line.

        The composer marks an empty value at the very end (``?``, ``key:``) past the last line: it is
        placed at the end of that line instead.
        """
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        last = self.source.line_count
        if line > last >= 1:
            return last, len(self.source.line_text(last)) + 1
        return line, column

    def report(self, code: str, message: str, node: yaml.Node, path: tuple[Any, ...], **kw: Any) -> None:
        line, column = self.place(node)
        self.out.diagnostics.append(diag(self.source, code, message, line, column, key=dotted(path), **kw))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == "tag:yaml.org,2002:str":
            return node.value
        if tag == "tag:yaml.org,2002:int":
            return self.loader.construct_yaml_int(node)
        if tag == "tag:yaml.org,2002:float":
            return self.loader.construct_yaml_float(node)
        if tag == "tag:yaml.org,2002:bool":
            return self.loader.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:null":
            return None
        return node.value  # timestamps and binary stay as written (JSON has no such types)

    def build(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        tag = node.tag or ""
        if tag in _SAFE_TAGS and node.__class__ is yaml.ScalarNode:
            return self.scalar(node)  # the common case first: plain scalars are never memoised
        if tag.startswith("tag:yaml.org,2002:python/") or tag.startswith("!!python"):
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            self.report(
                "config.unsafe-tag",
                f"{shown} asks the YAML loader to build a Python object (or run code); "
                "the doctor never builds it, and a safe loader refuses it",
                node,
                path,
                fix="replace the tagged value with a plain string, number, list or mapping",
                expected="plain YAML values",
            )
            return None
        if tag not in _SAFE_TAGS and tag != _MERGE_TAG:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            self.report(
                "config.unknown-tag",
                f"unknown YAML tag {shown}: safe loaders refuse it",
                node,
                path,
                fix="remove the tag and write a plain value",
                expected="plain YAML values",
            )
            return None
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            self.report(
                "config.recursive-alias",
                "this alias refers to a value that contains itself",
                node,
                path,
                fix="replace the alias (*name) with a copy of the value",
            )
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.active.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                result_list: list[Any] = []
                for i, item in enumerate(node.value):
                    child = (*path, i)
                    if self.keeps_place(child):
                        self.places.setdefault(child, self.place(item))
                    result_list.append(self.build(item, child))
                value: Any = result_list
            else:
                value = self.mapping(node, path)
        finally:
            self.active.discard(key)
        self.memo[key] = value
        return value

    def mapping(self, node: yaml.Node, path: tuple[Any, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, tuple[int, int]] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged_value = self.build(value_node, path)
                sources = merged_value if isinstance(merged_value, list) else [merged_value]
                for src in sources:
                    if isinstance(src, dict):
                        for k, v in src.items():
                            merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.report(
                    "config.complex-key",
                    "a mapping key must be a plain value, not a list or mapping",
                    key_node,
                    path,
                    fix="write the key as a plain word",
                )
                continue
            raw_key = self.build(key_node, path)
            name = raw_key if isinstance(raw_key, str) else ("null" if raw_key is None else str(raw_key).lower())
            child = (*path, name)
            key_line, key_col = self.place(key_node)
            if name in first:
                first_line, first_col = first[name]
                self.report(
                    "config.duplicate-key",
                    f"key {dotted(child)!r} is defined twice ({_lines(first_line, key_line)}); "
                    f"the value on line {key_line} silently replaces the one on line {first_line}",
                    key_node,
                    child,
                    fix=f"keep one {name!r} entry: delete line {first_line} or line {key_line}",
                    expected="each key once",
                )
            else:
                first[name] = (key_line, key_col)
            if self.keeps_place(child):
                where = self.place(value_node if isinstance(value_node, yaml.ScalarNode) else key_node)
                if first[name] != (key_line, key_col):  # a duplicate: the value that wins is the later one
                    self.places[child] = where
                else:
                    self.places.setdefault(child, where)
            result[name] = self.build(value_node, child)
        for k, v in merged.items():
            result.setdefault(k, v)
        return result


def _alias_bomb(source: Source, line: int, column: int) -> Diagnostic:
    return diag(
        source,
        "config.alias-bomb",
        f"the document's aliases expand to more than {ALIAS_EXPANSION_LIMIT:,} values "
        "(a 'billion laughs' document); it is not expanded",
        line,
        column,
        fix="remove the nested aliases (*name); write the values out",
    )


def parse_yaml(source: Source, *, depth: int | None = POSITION_DEPTH) -> Parsed:
    """Parse YAML with positions; never constructs tagged Python objects.

    PyYAML's composer (libyaml's when PyYAML was built with it) makes the node tree; one walk
    (:class:`_YamlBuilder`) builds plain data from it and records positions, unsafe or unknown
    tags, duplicate and complex keys, recursive aliases and the aliases' expanded size.
    Positions are recorded for keys up to ``depth`` levels deep (None: every level).
    """
    out = Parsed()
    tabs = list(_tab_lines(source))
    tab_lines = {line for line, _ in tabs}
    out.diagnostics.extend(
        diag(
            source,
            "config.tab-indent",
            f"line {line} is indented with a tab; YAML allows only spaces for indentation",
            line,
            column,
            fix=f"replace the tab(s) at the start of line {line} with spaces (e.g. `sed -i 's/\\t/  /g' FILE`)",
            expected="spaces",
        )
        for line, column in tabs
    )
    loader = _YAML_LOADER(source.text)
    try:
        node = loader.get_single_node()
        if node is None:
            return out
        builder = _YamlBuilder(source, loader, depth)
        size = builder.expanded_size(node) if "&" in source.text else 0
        if size > ALIAS_EXPANSION_LIMIT and size > 4 * len(builder.sizes):
            out.diagnostics.append(_alias_bomb(source, *builder.place(node)))
            return out
        builder.places[()] = builder.place(node)
        out.data = builder.build(node, ())
        out.places = builder.places
        out.positions = {dotted(path): list(place) for path, place in builder.places.items() if path}
        out.diagnostics.extend(builder.out.diagnostics)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opens
        err_line = mark.line + 1 if mark is not None else None
        err_column = mark.column + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if err_line in tab_lines or (err_line is not None and err_line - 1 in tab_lines and "\t" in problem):
            return out  # the tab finding already explains it
        if "expected a single document" in str(exc):
            out.diagnostics.append(
                diag(
                    source,
                    "config.multiple-documents",
                    "the file holds more than one YAML document (a second '---'); the service reads only one",
                    err_line,
                    err_column,
                    fix=f"delete the '---' on line {err_line} and merge the documents",
                    expected="one document",
                )
            )
            return out
        hint = ""
        fix = "fix the YAML at the caret"
        if "\\t" in problem or "'\\t'" in problem:
            hint = " (a tab character: YAML separates with spaces)"
            fix = "replace the tab with spaces"
        context = f" {exc.context}" if exc.context and exc.problem else ""
        out.diagnostics.append(
            diag(
                source,
                "config.syntax-error",
                f"YAML syntax error{context}: {problem}{hint}",
                err_line,
                err_column,
                fix=fix,
            )
        )
    except yaml.YAMLError as exc:
        out.diagnostics.append(diag(source, "config.syntax-error", f"YAML error: {exc}", None, None))
    except RecursionError:
        out.diagnostics.append(
            diag(source, "config.syntax-error", "the document is nested too deeply to read", 1, 1, fix="flatten it")
        )
    finally:
        loader.dispose()
    return out


# --------------------------------------------------------------------------- JSON

_WS = re.compile(r"[ \t\n\r]*")


class _Duplicates(Exception):  # noqa: N818 - control flow
    pass


class _JsonPositions:
    """Walk valid JSON to record positions; C's scanner parses whatever lies deeper."""

    def __init__(self, source: Source, depth: int) -> None:
        self.source = source
        self.depth = depth
        self.text = source.text
        self.scan: Any = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
        self.positions: dict[str, list[int]] = {}
        self.diagnostics: list[Diagnostic] = []

    def ws(self, idx: int) -> int:
        match = _WS.match(self.text, idx)
        return match.end() if match else idx

    def value(self, idx: int, path: tuple[Any, ...]) -> tuple[Any, int]:
        idx = self.ws(idx)
        char = self.text[idx]
        if len(path) < self.depth and char == "{":
            return self.obj(idx + 1, path)
        if len(path) < self.depth and char == "[":
            return self.arr(idx + 1, path)
        value, end = self.scan(self.text, idx)
        return value, end

    def note_place(self, path: tuple[Any, ...], offset: int) -> None:
        if len(path) <= POSITION_DEPTH:
            line, column = self.source.position(offset)
            self.positions[dotted(path)] = [line, column]

    def obj(self, idx: int, path: tuple[Any, ...]) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        first: dict[str, int] = {}
        idx = self.ws(idx)
        if self.text[idx] == "}":
            return result, idx + 1
        while True:
            idx = self.ws(idx)
            key_start = idx
            key, idx = self.scan(self.text, idx)
            child = (*path, key)
            idx = self.ws(idx) + 1  # ':'
            value_start = self.ws(idx)
            if key in first:
                first_line, _ = self.source.position(first[key])
                line, column = self.source.position(key_start)
                self.diagnostics.append(
                    diag(
                        self.source,
                        "config.duplicate-key",
                        f"key {dotted(child)!r} is defined twice ({_lines(first_line, line)}); "
                        f"the value on line {line} silently replaces the one on line {first_line}",
                        line,
                        column,
                        fix=f"keep one {key!r} entry: delete line {first_line} or line {line}",
                        expected="each key once",
                        key=dotted(child),
                    )
                )
            else:
                first[key] = key_start
            is_container = self.text[value_start] in "{["
            self.note_place(child, key_start if is_container else value_start)
            result[key], idx = self.value(value_start, child)
            idx = self.ws(idx)
            char = self.text[idx]
            idx += 1
            if char == "}":
                return result, idx

    def arr(self, idx: int, path: tuple[Any, ...]) -> tuple[list[Any], int]:
        result: list[Any] = []
        idx = self.ws(idx)
        if self.text[idx] == "]":
            return result, idx + 1
        while True:
            start = self.ws(idx)
            child = (*path, len(result))
            self.note_place(child, start)
            item, idx = self.value(start, child)
            result.append(item)
            idx = self.ws(idx)
            char = self.text[idx]
            idx += 1
            if char == "]":
                return result, idx


_TRAILING = re.compile(r",(\s*)([}\]])")


def _json_error(source: Source, text: str, exc: json.JSONDecodeError) -> tuple[Diagnostic, int | None]:
    """The diagnostic for a JSON error, and the offset of a trailing comma when that is the cause."""
    before = text[: exc.pos].rstrip()
    at = text[exc.pos : exc.pos + 1]
    if before.endswith(",") and at in ("}", "]"):
        comma = len(before) - 1
        line, column = source.position(comma)
        closer = "object" if at == "}" else "list"
        return (
            diag(
                source,
                "config.trailing-comma",
                f"trailing comma before the end of the {closer}: JSON does not allow it",
                line,
                column,
                fix=f"delete the ',' at line {line}, column {column}",
                expected=f"no comma before '{at}'",
            ),
            comma,
        )
    line, column = source.position(exc.pos)
    hint = ""
    if text[exc.pos : exc.pos + 2] in ("//", "/*") or at == "#":
        hint = " (JSON has no comments)"
    elif at == "'" or (exc.msg.startswith("Expecting property name") and at not in ("}",)):
        hint = " (JSON needs double quotes around keys and strings)"
    return diag(source, "config.syntax-error", f"JSON syntax error: {exc.msg}{hint}", line, column), None


def parse_json(source: Source, *, max_errors: int = 20) -> Parsed:
    """Parse JSON with positions; trailing commas are each reported and parsing goes on past them."""
    out = Parsed()
    text = source.text
    duplicates = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicates
        result = dict(pairs)
        if len(result) != len(pairs):
            duplicates = True
        return result

    decoder = json.JSONDecoder(object_pairs_hook=pairs_hook)
    for _ in range(max_errors):
        try:
            decoder.decode(text)
            break
        except json.JSONDecodeError as exc:
            finding, comma = _json_error(source, text, exc)
            out.diagnostics.append(finding)
            if comma is None:
                return out
            text = text[:comma] + " " + text[comma + 1 :]  # same offsets: keep reading past it
        except RecursionError:
            out.diagnostics.append(diag(source, "config.syntax-error", "the JSON is nested too deeply", 1, 1))
            return out
    else:
        return out
    if out.diagnostics:
        return out  # trailing commas: reported; the service would refuse the file, so no data
    walker = _JsonPositions(
        Source(text) if text is not source.text else source, 10_000 if duplicates else POSITION_DEPTH
    )
    try:
        out.data, _ = walker.value(0, ())
    except RecursionError:
        walker = _JsonPositions(source, POSITION_DEPTH)
        out.data, _ = walker.value(0, ())
    out.positions = walker.positions
    out.diagnostics.extend(walker.diagnostics)
    return out


# --------------------------------------------------------------------------- TOML

_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"']+)\s*=\s*")


def parse_toml(source: Source) -> Parsed:
    """Parse TOML (Python 3.11+ tomllib); positions come from a line scan of tables and keys."""
    out = Parsed()
    try:
        tomllib: Any = importlib.import_module("tomllib")
    except ModuleNotFoundError:
        out.diagnostics.append(
            diag(
                source,
                "config.unsupported-format",
                "TOML configs need Python 3.11 or newer to be read by the doctor",
                None,
                None,
                fix="convert the config to YAML or JSON",
            )
        )
        return out
    table: tuple[str, ...] = ()
    seen: dict[str, int] = {}
    for number, row_text in enumerate(source.text.split("\n"), start=1):
        header = _TOML_TABLE.match(row_text)
        if header:
            table = tuple(p.strip().strip("\"'") for p in header.group(1).split("."))
            seen.setdefault(dotted(table), number)
            if len(table) <= POSITION_DEPTH:
                out.positions.setdefault(dotted(table), [number, row_text.index("[") + 1])
            continue
        key = _TOML_KEY.match(row_text)
        if key:
            path = (*table, *(p.strip().strip("\"'") for p in key.group(1).split(".")))
            name = dotted(path)
            if name in seen:
                continue
            seen[name] = number
            if len(path) <= POSITION_DEPTH:
                out.positions[name] = [number, key.end() + 1]
    try:
        out.data = tomllib.loads(source.text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _TOML_AT.search(message)
        line = int(where.group(1)) if where else None
        column = int(where.group(2)) if where else None
        text = _TOML_AT.sub("", message).strip()
        if text.startswith("Cannot overwrite a value") or text.startswith("Cannot declare"):
            out.diagnostics.append(
                diag(
                    source,
                    "config.duplicate-key",
                    f"a key or table is defined twice ({text}); TOML refuses the file",
                    line,
                    column,
                    fix="keep one definition of the key",
                    expected="each key once",
                )
            )
        else:
            out.diagnostics.append(diag(source, "config.syntax-error", f"TOML syntax error: {text}", line, column))
        out.data = None
    return out


# --------------------------------------------------------------------------- launch flags

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _shell_words(source: Source, separators: list[int] | None = None) -> tuple[list[tuple[str, int]], list[Diagnostic]]:
    """Split a shell command into words with their start offsets (quotes, escapes, continuations).

    Not :mod:`shlex`: it gives no offsets (findings point at a flag's line and column, and an
    unclosed quote at where it opens), and it splits a backslash before ``$`` inside double
    quotes and a backslash-newline continuation differently from a POSIX shell.
    ``tests/test_config_shell_words.py`` compares the two on every case where shlex is right.
    """
    text = source.text
    words: list[tuple[str, int]] = []
    found: list[Diagnostic] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r\n;&|":
            if separators is not None and char in "\n;&|":
                separators.append(i)  # where one command ends (a newline that is not a continuation)
            i += 1
            continue
        if char == "\\" and text[i + 1 : i + 2] in ("\n", "\r"):
            i += 3 if text[i + 1 : i + 3] == "\r\n" else 2
            continue
        if char == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        start = i
        word: list[str] = []
        while i < n and text[i] not in " \t\r\n;&|":
            char = text[i]
            if char == "'":
                close = text.find(char, i + 1)
                if close < 0:
                    found.append(_unclosed(source, i, char))
                    word.append(text[i + 1 :])
                    i = n
                    break
                word.append(text[i + 1 : close])
                i = close + 1
            elif char == '"':
                inner, close = _double_quoted(text, i + 1)
                word.append(inner)
                if close < 0:
                    found.append(_unclosed(source, i, char))
                    i = n
                    break
                i = close + 1
            elif char == "\\" and i + 1 < n:
                if text[i + 1] in "\r\n":
                    i += 3 if text[i + 1 : i + 3] == "\r\n" else 2
                    break
                word.append(text[i + 1])
                i += 2
            else:
                word.append(char)
                i += 1
        words.append(("".join(word), start))
    return words, found


def _lines(first: int | None, second: int | None) -> str:
    """``lines 3 and 7``, or ``both on line 3`` when they share a line."""
    return f"both on line {first}" if first == second else f"lines {first} and {second}"


def _unclosed(source: Source, offset: int, quote: str) -> Diagnostic:
    line, column = source.position(offset)
    return diag(
        source,
        "config.syntax-error",
        f"unclosed {quote} quote: the shell would wait for more input",
        line,
        column,
        fix=f"close the quote opened at line {line}, column {column}",
    )


def _double_quoted(text: str, start: int) -> tuple[str, int]:
    """The text of a double-quoted string starting after its quote, and the closing quote's offset (-1: none).

    POSIX (Shell Command Language 2.2.3): inside double quotes a backslash keeps its special
    meaning only before a dollar sign, a backquote, a double quote, a backslash or a newline
    (a line continuation); before anything else it is an ordinary character.
    """
    out: list[str] = []
    i, n = start, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            return "".join(out), i
        if char == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out), -1


def _flag_value(text: str) -> Any:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_flags(source: Source) -> Parsed:
    """Parse a vLLM/SGLang launch command into ``{flag-name: value}`` (plus ``model``)."""
    out = Parsed()
    separators: list[int] = []
    words, out.diagnostics = _shell_words(source, separators)
    marks = sorted([(offset, word) for word, offset in words] + [(offset, None) for offset in separators])
    for offset, word in marks:
        line, column = source.position(offset)
        out.words.append([word, line, column])  # None: the end of a command (newline, ';', '&', '|')
    data: dict[str, Any] = {}
    first: dict[str, int] = {}
    i = 0
    while i < len(words) and not words[i][0].startswith("--"):
        word, offset = words[i]
        if word == "serve" and i + 1 < len(words) and not words[i + 1][0].startswith("-"):
            data["model"] = words[i + 1][0]
            line, column = source.position(words[i + 1][1])
            out.positions["model"] = [line, column]
            i += 1
        i += 1
    while i < len(words):
        word, offset = words[i]
        i += 1
        if not word.startswith("--"):
            continue
        name, eq, inline = word[2:].partition("=")
        name = name.replace("_", "-")
        value_offset = offset
        if eq:
            value: Any = _flag_value(inline)
            value_offset = offset + len(word) - len(inline)
        elif i < len(words) and not words[i][0].startswith("--"):
            value = _flag_value(words[i][0])
            value_offset = words[i][1]
            i += 1
        else:
            value = True
        line, column = source.position(value_offset)
        if name in first:
            first_line, _ = source.position(first[name])
            flag_line, flag_column = source.position(offset)
            out.diagnostics.append(
                diag(
                    source,
                    "config.duplicate-key",
                    f"--{name} is given twice ({_lines(first_line, flag_line)}); the last one wins",
                    flag_line,
                    flag_column,
                    fix=f"keep one --{name}",
                    expected="each flag once",
                    key=name,
                )
            )
        else:
            first[name] = offset
        data[name] = value
        out.positions[name] = [line, column]
    out.data = data
    return out


def detect_format(name: str, text: str) -> str:
    """``yaml``, ``json``, ``toml`` or ``flags`` from the file name, else from the content."""
    lower = name.lower()
    for suffixes, fmt in (
        ((".yaml", ".yml"), "yaml"),
        ((".json",), "json"),
        ((".toml",), "toml"),
        ((".sh", ".args", ".flags", ".cmd", ".txt"), "flags"),
    ):
        if lower.endswith(suffixes):
            return fmt
    head = text.lstrip()
    if head.startswith(("{", "[")):
        return "json"
    first = head.split(None, 1)[0] if head else ""
    if first.startswith("--") or first in ("python", "python3") or _ASSIGNMENT.match(first):
        return "flags"
    from autoglm_doctor import engines  # the engine programs: vllm, sglang, each engine module's name

    if any(engines.starts_engine(first, name) for name in engines.ENGINES):
        return "flags"
    return "yaml"


def parse(text: str | Source, fmt: str) -> Parsed:
    """Parse ``text`` (or an already made :class:`Source`) in format ``fmt``.

    Never raises for hostile input: nesting deeper than :data:`autoglm_doctor.safeio.MAX_DEPTH`
    (or than the interpreter's recursion limit) and integers too long to convert (more than
    4300 digits) become a ``config.syntax-error`` finding and no data.
    """
    source = text if isinstance(text, Source) else Source(text)
    parser = {"json": parse_json, "toml": parse_toml, "flags": parse_flags}.get(fmt, parse_yaml)
    return guarded(source, parser)


def guarded(source: Source, parser: Callable[[Source], Parsed]) -> Parsed:
    """``parser(source)``, with recursion, over-long integers and too deep nesting as a finding."""
    from autoglm_doctor.safeio import MAX_DEPTH, depth_over

    try:
        parsed = parser(source)
    except RecursionError:
        problem = f"it is nested more than {MAX_DEPTH} levels deep"
    except ValueError as exc:  # int("9" * 5000): "Exceeds the limit (4300 digits) ..."
        problem = f"it holds a value that cannot be converted ({str(exc).split(':')[0]})"
    else:
        if not depth_over(parsed.data, MAX_DEPTH):
            return parsed
        problem = f"it is nested more than {MAX_DEPTH} levels deep"
    failed = Parsed()
    failed.diagnostics.append(
        diag(source, "config.syntax-error", f"the file cannot be read: {problem}", 1, 1, fix="flatten or shorten it")
    )
    return failed
