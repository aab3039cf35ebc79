"""Reading an engine's argument definitions from its source files with :mod:`ast`, never importing it.

Shared by the engine modules; the same functions read released files in ``tools/engine_tables.py``,
so the generated tables and an installed engine are read alike. Every function takes source text and
returns plain data; a file that does not parse (or nests past the interpreter's limit) is a problem
string, never an exception.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

MAX_SOURCE = 4 << 20
"""A source file larger than this is not read (the largest argument file, vLLM's arg_utils.py, is ~150 KB)."""


def parse(text: str, name: str, problems: list[str]) -> ast.Module | None:
    """The module's tree, or None with the reason appended to ``problems``."""
    if len(text) > MAX_SOURCE:
        problems.append(f"{name}: larger than {MAX_SOURCE >> 20} MiB, not read")
        return None
    try:
        return ast.parse(text, filename=name)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        problems.append(f"{name}: cannot be read as Python ({type(exc).__name__})")
        return None


def literal(node: ast.AST | None, constants: dict[str, Any] | None = None) -> Any:
    """The value of a literal expression (strings, numbers, lists, tuples, sets, names of constants)."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [literal(e, constants) for e in node.elts]
        return None if any(i is None for i in items) else items
    if isinstance(node, ast.Name) and constants is not None:
        return constants.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = literal(node.operand, constants)
        return -inner if isinstance(inner, (int, float)) and not isinstance(inner, bool) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # ["auto"] + CHOICES
        left, right = literal(node.left, constants), literal(node.right, constants)
        if isinstance(left, list) and isinstance(right, list):
            return left + right
    return None


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = <literal>`` assignments (choice lists)."""
    out: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = literal(stmt.value, out)
            if value is not None:
                out[stmt.targets[0].id] = value
    return out


def dotted_name(node: ast.AST | None) -> str:
    """``argparse.BooleanOptionalAction`` for an attribute chain, ``json.loads``; empty for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def add_argument_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Every ``<something>.add_argument(...)`` call, in source order."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
    ]
    yield from sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def option_strings(call: ast.Call) -> list[str]:
    """The positional option strings of an ``add_argument`` call (``"--model-path", "--model"``)."""
    names = []
    for arg in call.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
            names.append(arg.value)
        elif isinstance(arg, ast.JoinedStr):
            return []  # a computed name (f"--{key}"): read from the fields instead
    return names


def keywords(call: ast.Call) -> dict[str, ast.AST]:
    """The named arguments of a call (``**kwargs`` under the key ``**``)."""
    out: dict[str, ast.AST] = {}
    for kw in call.keywords:
        out[kw.arg if kw.arg is not None else "**"] = kw.value
    return out


def union_members(node: ast.AST | None) -> list[ast.AST]:
    """``A | B | None``, ``Optional[A]``, ``Union[A, B]`` flattened into their members."""
    if node is None:
        return []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return union_members(node.left) + union_members(node.right)
    if isinstance(node, ast.Subscript):
        head = dotted_name(node.value).rsplit(".", 1)[-1]
        inner = node.slice
        if head == "Optional":
            return [*union_members(inner), ast.Constant(None)]
        if head == "Union":
            elts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return [m for e in elts for m in union_members(e)]
        if head in ("Annotated", "A", "SkipValidation", "Required", "NotRequired"):
            first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
            return union_members(first)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted forward reference
        try:
            return union_members(ast.parse(node.value, mode="eval").body)
        except (SyntaxError, RecursionError):
            return [node]
    return [node]


def head_of(node: ast.AST) -> str:
    """The bare type name of an annotation member (``list`` for ``list[int]``, ``None`` for None)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    if isinstance(node, ast.Subscript):
        return dotted_name(node.value).rsplit(".", 1)[-1]
    return dotted_name(node).rsplit(".", 1)[-1]


def literal_values(node: ast.AST, aliases: dict[str, ast.AST], depth: int = 0) -> list[Any] | None:
    """The values of ``Literal["a", "b"]`` (through type aliases), or None when ``node`` is no Literal."""
    if depth > 8:
        return None
    if isinstance(node, ast.Subscript) and head_of(node) == "Literal":
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        items = [literal(e) for e in elts]
        return [v for v in items if v is not None]
    if isinstance(node, ast.Name) and node.id in aliases:
        values: list[Any] = []
        found = False
        for member in union_members(aliases[node.id]):
            inner = literal_values(member, aliases, depth + 1)
            if inner is not None:
                found = True
                values.extend(inner)
        return values if found else None
    return None


def type_aliases(tree: ast.Module) -> dict[str, ast.AST]:
    """Module-level ``Name = <type expression>`` and ``Name: TypeAlias = ...`` (``ModelDType = Literal[...]``)."""
    out: dict[str, ast.AST] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            if isinstance(stmt.value, (ast.Subscript, ast.BinOp, ast.Name)):
                out[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            if dotted_name(stmt.annotation).endswith("TypeAlias"):
                out[stmt.target.id] = stmt.value
        elif type(stmt).__name__ == "TypeAlias":  # Python 3.12's `type X = ...`
            name = getattr(stmt, "name", None)
            if isinstance(name, ast.Name):
                out[name.id] = stmt.value  # type: ignore[attr-defined]
    return out


def class_fields(cls: ast.ClassDef) -> dict[str, ast.AnnAssign]:
    """The annotated fields of a class body, in order (``ClassVar`` ones left out)."""
    out: dict[str, ast.AnnAssign] = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if head_of(stmt.annotation) == "ClassVar":
                continue
            out[stmt.target.id] = stmt
    return out


def field_bounds(stmt: ast.AnnAssign) -> dict[str, float]:
    """``Field(default=..., gt=0, le=1)``: the bounds pydantic enforces on the value."""
    value = stmt.value
    if not isinstance(value, ast.Call) or dotted_name(value.func).rsplit(".", 1)[-1] != "Field":
        return {}
    out: dict[str, float] = {}
    for kw in value.keywords:
        if kw.arg in ("gt", "ge", "lt", "le"):
            number = literal(kw.value)
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                out[kw.arg] = float(number)
    return out
