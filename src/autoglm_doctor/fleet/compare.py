"""Comparing: the majority value of each attribute, the nodes that deviate, identical groups."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autoglm_doctor.fleet.read import ATTRIBUTES, Attribute, FileProblem, expand, read_file


@dataclass
class Node:
    """What one node's files say; ``None`` means the files do not tell (not a drift)."""

    name: str
    """Hostname when a file gives one, else the file name's stem."""
    files: list[str] = field(default_factory=list)
    """The files read for this node."""
    values: dict[str, str | None] = field(default_factory=dict)
    """Attribute key -> value as a string."""


@dataclass(frozen=True, slots=True)
class AttributeDrift:
    """How one attribute is spread over the fleet."""

    attribute: Attribute
    """Which attribute."""
    majority: str | None
    """The most common known value (ties: the smallest), None when no node tells."""
    counts: dict[str, int]
    """Known value -> number of nodes, most common first."""
    deviating: dict[str, list[str]]
    """Non-majority value -> the nodes that have it (sorted)."""
    unknown: list[str]
    """Nodes whose files do not tell this attribute."""

    @property
    def drifts(self) -> bool:
        """More than one known value."""
        return len(self.counts) > 1


@dataclass(frozen=True, slots=True)
class Group:
    """Nodes with identical values for every attribute."""

    values: dict[str, str | None]
    """Attribute key -> value."""
    nodes: list[str]
    """Member nodes (sorted)."""


@dataclass(frozen=True, slots=True)
class FleetResult:
    """Everything ``fleet`` found."""

    nodes: list[Node]
    """Every node read, sorted by name."""
    problems: list[FileProblem]
    """Files that could not be used."""
    attributes: list[AttributeDrift]
    """One entry per attribute in :data:`ATTRIBUTES`."""
    groups: list[Group]
    """Identical configurations, largest first."""
    files_read: int
    """Files that were used."""

    @property
    def drifting_nodes(self) -> list[str]:
        """Nodes that deviate from the majority in at least one attribute."""
        names = {n for a in self.attributes for members in a.deviating.values() for n in members}
        return sorted(names)

    @property
    def failing_nodes(self) -> list[str]:
        """Nodes whose report says fail, or that have failing checks."""
        return sorted(
            n.name
            for n in self.nodes
            if n.values.get("status") == "fail" or n.values.get("failing_checks") not in (None, "none")
        )

    @property
    def drift(self) -> bool:
        """Some attribute has more than one value."""
        return any(a.drifts for a in self.attributes)

    def exit_code(self) -> int:
        """0 same and healthy; 1 drift, a failing node or an unreadable file; 2 nothing readable."""
        if not self.nodes:
            return 2
        return 1 if self.drift or self.failing_nodes or self.problems else 0


# --------------------------------------------------------------------------- reading


def _merge(node: Node, kind: str, values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        current = node.values.get(key)
        # A snapshot knows versions best, a report knows check status best; keep the first otherwise.
        if current is None or (kind == "report" and key in ("status", "failing_checks")):
            node.values[key] = value


def _value_order(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def compare(nodes: Sequence[Node], problems: Sequence[FileProblem], files_read: int) -> FleetResult:
    """Majority, deviating nodes and identical-configuration groups for ``nodes``."""
    ordered = sorted(nodes, key=lambda n: n.name)
    attributes: list[AttributeDrift] = []
    for attribute in ATTRIBUTES:
        by_value: dict[str, list[str]] = {}
        unknown: list[str] = []
        for node in ordered:
            value = node.values.get(attribute.key)
            if value is None:
                unknown.append(node.name)
            else:
                by_value.setdefault(value, []).append(node.name)
        counts = dict(sorted(((v, len(ns)) for v, ns in by_value.items()), key=_value_order))
        majority = next(iter(counts), None)
        deviating = {v: by_value[v] for v in counts if v != majority}
        attributes.append(AttributeDrift(attribute, majority, counts, deviating, unknown))
    grouped: dict[tuple[str | None, ...], list[str]] = {}
    for node in ordered:
        key = tuple(node.values.get(a.key) for a in ATTRIBUTES)
        grouped.setdefault(key, []).append(node.name)
    groups = [
        Group(dict(zip((a.key for a in ATTRIBUTES), key, strict=True)), members)
        for key, members in sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    ]
    return FleetResult(list(ordered), list(problems), attributes, groups, files_read)


def analyse(paths: Iterable[Path]) -> FleetResult:
    """Read every file (folders expand to their ``*.json``) and compare the nodes."""
    nodes: dict[str, Node] = {}
    kinds: dict[str, set[str]] = {}
    problems: list[FileProblem] = []
    files_read = 0
    # Parsing thousands of JSON trees allocates millions of objects that all stay alive until
    # read; the cyclic GC would rescan them again and again for nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for path in expand(paths):
            files_read += _add(path, nodes, kinds, problems)
    finally:
        if collecting:
            gc.enable()
    return compare(list(nodes.values()), problems, files_read)


def _add(path: Path, nodes: dict[str, Node], kinds: dict[str, set[str]], problems: list[FileProblem]) -> int:
    outcome = read_file(path)
    if isinstance(outcome, FileProblem):
        problems.append(outcome)
        return 0
    name, kind, values = outcome
    if name in nodes and kind in kinds[name]:
        name = str(path)  # two files of one kind for one name: tell them apart by path
    node = nodes.setdefault(name, Node(name))
    kinds.setdefault(name, set()).add(kind)
    node.files.append(str(path))
    _merge(node, kind, values)
    return 1


# --------------------------------------------------------------------------- rendering
