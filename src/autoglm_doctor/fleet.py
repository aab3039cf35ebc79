"""Compare many nodes: read their snapshots or JSON reports and show where they drift apart.

A fleet run is ordinary: each node writes ``autoglm-doctor snapshot -o NODE.json`` (or
``check --format json --output NODE.json``), launched by whatever the site already has
(Kubernetes, Slurm, Ansible; see docs/fleet.md). ``autoglm-doctor fleet FILES...`` then reads
them all, takes the majority value of each attribute (driver, CUDA, torch, transformers, GPU
count, check status...) and names only the nodes that deviate, so 1,000 nodes fit on a screen.

Raw JSON is read defensively (``dict.get`` chains): a file from an older or newer doctor, or a
half-written one, becomes a per-file problem, never a crash.
"""

from __future__ import annotations

import gc
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoglm_doctor.records import record

SNAPSHOT_SCHEMA = "autoglm-doctor/snapshot@1"
REPORT_SCHEMA = "autoglm-doctor/report@1"
FLEET_SCHEMA = "autoglm-doctor/fleet@1"

MAX_FILE_BYTES = 64 << 20
"""A snapshot is tens of kilobytes; anything this big is not one."""


@record
class Attribute:
    """One property compared across nodes."""

    key: str
    """Stable key used in the JSON output."""
    label: str
    """What a person reads."""


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("python", "Python"),
    Attribute("driver", "NVIDIA driver"),
    Attribute("cuda", "CUDA (driver)"),
    Attribute("gpu_count", "GPU count"),
    Attribute("gpu_name", "GPU model"),
    Attribute("torch", "torch"),
    Attribute("torch_cuda", "torch CUDA build"),
    Attribute("transformers", "transformers"),
    Attribute("status", "check status"),
    Attribute("failing_checks", "failing checks"),
)
"""Compared attributes, in display order."""

ABSENT = "not installed"
"""Value of a package attribute when a snapshot shows the package is not installed."""
NO_GPU = "none"
"""Driver value of a snapshot whose GPU facts found no NVIDIA driver."""


@dataclass
class Node:
    """What one node's files say; ``None`` means the files do not tell (not a drift)."""

    name: str
    """Hostname when a file gives one, else the file name's stem."""
    files: list[str] = field(default_factory=list)
    """The files read for this node."""
    values: dict[str, str | None] = field(default_factory=dict)
    """Attribute key -> value as a string."""


@record
class FileProblem:
    """A file that could not be used."""

    file: str
    """The path as given."""
    error: str
    """Why, in words."""


@record
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


@record
class Group:
    """Nodes with identical values for every attribute."""

    values: dict[str, str | None]
    """Attribute key -> value."""
    nodes: list[str]
    """Member nodes (sorted)."""


@record
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


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip()
    return text or None


def _first(data: Any, *paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = _get(data, *path)
        if value not in (None, ""):
            return value
    return None


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _effective_versions(distributions: Any, wanted: tuple[str, ...]) -> dict[str, str | None]:
    """Version import would pick (lowest path_index) per wanted name; ABSENT when not installed."""
    if not isinstance(distributions, list):
        return dict.fromkeys(wanted)
    best: dict[str, tuple[int, str]] = {}
    for dist in distributions:
        name = dist.get("name") if isinstance(dist, dict) else None
        if not isinstance(name, str) or len(name) < 5:
            continue
        key = _canonical(name)
        if key not in wanted:
            continue
        index = dist.get("path_index")
        rank = index if isinstance(index, int) and not isinstance(index, bool) else 1 << 30
        version = _text(dist.get("version")) or "unknown"
        if key not in best or rank < best[key][0]:
            best[key] = (rank, version)
    return {name: best[name][1] if name in best else ABSENT for name in wanted}


def _gpu_list(gpu: dict[str, Any]) -> list[Any] | None:
    for key in ("gpus", "devices"):
        value = gpu.get(key)
        if isinstance(value, list):
            return value
    return None


def _cuda_version(value: Any) -> str | None:
    """``12.4`` from NVML's encoding (12040) or from text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1000:
        return f"{value // 1000}.{(value % 1000) // 10}"
    return _text(value)


def snapshot_values(data: dict[str, Any]) -> dict[str, str | None]:
    """Attribute values from a snapshot's raw JSON (keys read: see docs/fleet.md)."""
    values: dict[str, str | None] = {k.key: None for k in ATTRIBUTES}
    values["python"] = _text(_get(data, "python", "version"))
    torch = data.get("torch")
    versions = _effective_versions(data.get("distributions"), ("torch", "transformers"))
    if isinstance(torch, dict):
        values["torch"] = _text(torch.get("version")) or versions["torch"]
        values["torch_cuda"] = _text(torch.get("cuda")) or (
            f"rocm {torch['hip']}" if _text(torch.get("hip")) else "cpu"
        )
    elif "torch" in data and torch is None:
        values["torch"] = versions["torch"]
        values["torch_cuda"] = ABSENT if values["torch"] == ABSENT else None
    values["transformers"] = versions["transformers"]
    gpu = data.get("gpu")
    if isinstance(gpu, dict):
        devices = _gpu_list(gpu)
        count = _first(gpu, ("gpu_count",), ("count",), ("device_count",))
        if isinstance(count, int) and not isinstance(count, bool):
            values["gpu_count"] = str(count)
        elif devices is not None:
            values["gpu_count"] = str(len(devices))
        driver = _first(gpu, ("driver_version",), ("driver",), ("nvml", "driver_version"))
        values["driver"] = _text(driver)
        values["cuda"] = _cuda_version(
            _first(gpu, ("cuda_driver_version",), ("driver_cuda",), ("cuda_version",), ("max_cuda",), ("cuda",))
        )
        if values["driver"] is None and (gpu.get("nvml_error") or values["gpu_count"] == "0"):
            values["driver"] = NO_GPU
            values["gpu_count"] = values["gpu_count"] or "0"
        if devices:
            names = Counter(_text(d.get("name")) or "unknown" for d in devices if isinstance(d, dict))
            if names:
                values["gpu_name"] = " + ".join(
                    f"{n}× {name}" if len(names) > 1 else name for name, n in sorted(names.items())
                )
    return values


def report_values(data: dict[str, Any]) -> dict[str, str | None]:
    """Attribute values from a JSON report (``check --format json``)."""
    values: dict[str, str | None] = {k.key: None for k in ATTRIBUTES}
    values["python"] = _text(_get(data, "environment", "python"))
    status = _text(data.get("status"))
    values["status"] = status
    results = data.get("results")
    if isinstance(results, list):
        failing = sorted(
            str(r.get("id"))
            for r in results
            if isinstance(r, dict) and r.get("status") in ("fail", "error") and r.get("id") is not None
        )
        values["failing_checks"] = ", ".join(failing) if failing else "none"
    return values


def _hostname(data: dict[str, Any]) -> str | None:
    name = _first(data, ("hostname",), ("host", "hostname"), ("environment", "hostname"), ("host", "node"))
    return name if isinstance(name, str) and name.strip() else None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".json", ".snapshot", ".report"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


_DISTRIBUTIONS_OPEN = '\n  "distributions": ['
_WANTED_DISTRIBUTIONS = ("torch", "transformers")


def load_json(raw: bytes) -> Any:
    r"""Parse a snapshot or report; in a snapshot only the distributions the fleet compares.

    ``distributions`` is nine tenths of a snapshot. In the layout ``snapshot`` writes (indent 2),
    the top-level list opens with ``\n  "distributions": [`` and closes at the next ``\n  ]``
    (deeper lines are indented further, and JSON strings hold no raw newlines), and each entry
    is an object between ``\n    {`` and ``\n    }``. Only the entries that mention torch or
    transformers are parsed. Any other layout is parsed in full.
    """
    text = raw.decode("utf-8")
    start = text.find(_DISTRIBUTIONS_OPEN)
    if start < 0:
        return json.loads(text)
    body = start + len(_DISTRIBUTIONS_OPEN)
    end = text.find("\n  ]", body)
    if end < 0 or not text.startswith("\n    {", body):
        return json.loads(text)
    data = json.loads(text[:body] + text[end:])
    if not isinstance(data, dict) or data.get("distributions") != []:
        return json.loads(text)
    section = text[body:end]
    lowered = section.lower()
    picked: dict[int, Any] = {}
    for name in _WANTED_DISTRIBUTIONS:
        needle = f'"{name}"'
        at = lowered.find(needle)
        while at >= 0:
            begin = section.rfind("\n    {", 0, at)
            close = section.find("\n    }", at)
            if begin >= 0 and close >= 0 and begin not in picked:
                picked[begin] = json.loads(section[begin : close + len("\n    }")])
            at = lowered.find(needle, at + len(needle))
    data["distributions"] = [picked[k] for k in sorted(picked)]
    return data


def read_file(path: Path) -> tuple[str, str, dict[str, str | None]] | FileProblem:
    """(node name, kind, values) of one snapshot or report, or why it cannot be used."""
    shown = str(path)
    try:
        if path.is_dir():
            return FileProblem(shown, "is a folder")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return FileProblem(shown, f"is {size >> 20} MiB: too big to be a snapshot or report")
        raw = path.read_bytes()
    except OSError as exc:
        return FileProblem(shown, f"cannot read: {exc.strerror or exc}")
    try:
        data = load_json(raw)
    except UnicodeDecodeError:
        return FileProblem(shown, "not UTF-8 text")
    except json.JSONDecodeError as exc:
        return FileProblem(shown, f"not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})")
    except RecursionError:
        return FileProblem(shown, "JSON nested too deeply")
    if not isinstance(data, dict):
        return FileProblem(shown, f"a JSON {type(data).__name__}, not a snapshot or report object")
    schema = data.get("schema")
    if schema == SNAPSHOT_SCHEMA:
        if not isinstance(data.get("python"), dict):
            return FileProblem(shown, "snapshot without python facts (truncated or hand-edited?)")
        kind, values = "snapshot", snapshot_values(data)
    elif schema == REPORT_SCHEMA:
        kind, values = "report", report_values(data)
    else:
        return FileProblem(
            shown,
            f"unknown schema {schema!r} (expected {SNAPSHOT_SCHEMA!r} or {REPORT_SCHEMA!r}; "
            "make one with `autoglm-doctor snapshot -o FILE`)",
        )
    return (_hostname(data) or _stem(path), kind, values)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to read: each path as given, a folder's ``*.json`` files (sorted) instead of the folder."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file()))
        else:
            out.append(path)
    return out


def _merge(node: Node, kind: str, values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        current = node.values.get(key)
        # A snapshot knows versions best, a report knows check status best; keep the first otherwise.
        if current is None or (kind == "report" and key in ("status", "failing_checks")):
            node.values[key] = value


# --------------------------------------------------------------------------- comparing


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


def _names(names: Sequence[str], limit: int) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} +{len(names) - limit} more"


_SHORT = {"driver": "driver", "cuda": "CUDA", "torch_cuda": "torch CUDA", "python": "Python"}


def _group_summary(values: dict[str, str | None], keys: Sequence[str] | None = None) -> str:
    """Compact ``key value`` parts of a configuration (only ``keys`` when given)."""
    parts = []
    for attribute in ATTRIBUTES:
        if keys is not None and attribute.key not in keys:
            continue
        value = values.get(attribute.key)
        if value is None or (attribute.key == "failing_checks" and value == "none" and keys is None):
            continue
        if attribute.key == "gpu_count":
            name = values.get("gpu_name")
            shown = f"{value}× {name}" if name and "gpu_name" not in (keys or ()) else f"{value} GPUs"
            parts.append(shown)
        elif attribute.key == "gpu_name" and keys is None:
            continue  # shown with the count
        elif attribute.key == "status":
            parts.append(f"status {value}")
        elif attribute.key == "failing_checks":
            parts.append(f"failing: {value}")
        else:
            parts.append(f"{_SHORT.get(attribute.key, attribute.label)} {value}")
    return " · ".join(parts) or "(nothing known)"


def _wrap(head: str, summary: str, width: int) -> list[str]:
    """``head`` + the `` · ``-separated parts, continued on indented lines to fit ``width``."""
    lines: list[str] = []
    current = head
    for part in summary.split(" · "):
        candidate = part if current in (head, " " * len(head)) else f"{current} · {part}"
        if current not in (head, " " * len(head)) and len(candidate) > width:
            lines.append(current)
            current = " " * len(head) + part
        elif current in (head, " " * len(head)):
            current += part
        else:
            current = candidate
    lines.append(current)
    return lines


def _differences(values: dict[str, str | None], reference: dict[str, str | None]) -> list[str]:
    return [a.key for a in ATTRIBUTES if values.get(a.key) != reference.get(a.key)]


def render_text(result: FleetResult, width: int = 100, max_groups: int = 10, max_names: int = 6) -> str:
    """The human view: a line per attribute (majority, then deviating nodes), then groups."""
    lines: list[str] = []
    drifting = result.drifting_nodes
    failing = result.failing_nodes
    head = f"autoglm-doctor fleet · {len(result.nodes)} nodes from {result.files_read} files"
    if result.problems:
        head += f" · {len(result.problems)} unreadable"
    lines.append(head)
    lines.append("")
    label_width = max(len(a.label) for a in ATTRIBUTES)
    known = [a for a in result.attributes if a.counts]
    for drift in known:
        label = drift.attribute.label.ljust(label_width)
        total = sum(drift.counts.values())
        mark = "✗" if drift.drifts else "✓"
        line = f"{mark} {label}  {drift.majority} on {drift.counts[drift.majority or '']}/{total}"
        if drift.unknown:
            line += f" ({len(drift.unknown)} unknown)"
        lines.append(line)
        for value, members in drift.deviating.items():
            lines.append(f"    {value} on {len(members)}: {_names(members, max_names)}")
    silent = [a.attribute.label for a in result.attributes if not a.counts]
    if silent:
        lines.append(f"  not in any file: {', '.join(silent)}")
    lines.append("")
    lines.append(f"Configurations: {len(result.groups)} distinct")
    for index, group in enumerate(result.groups[:max_groups]):
        if index == 0:
            summary = _group_summary(group.values)
        else:  # what sets the group apart from the largest one
            reference = result.groups[0].values
            summary = "differs: " + _group_summary(group.values, _differences(group.values, reference))
        lines.extend(_wrap(f"  {len(group.nodes):>5}  ", summary, width))
        lines.append(f"         {_names(group.nodes, max_names)}")
    if len(result.groups) > max_groups:
        rest = result.groups[max_groups:]
        lines.append(f"  +{len(rest)} more configurations ({sum(len(g.nodes) for g in rest)} nodes); see --format json")
    if result.problems:
        lines.append("")
        lines.append(f"Unreadable files ({len(result.problems)}):")
        lines.extend(f"  {p.file}: {p.error}" for p in result.problems[:max_groups])
        if len(result.problems) > max_groups:
            lines.append(f"  +{len(result.problems) - max_groups} more")
    lines.append("")
    if not result.nodes:
        lines.append("Result: no file could be read")
    elif not (drifting or failing or result.problems):
        lines.append(f"Result: no drift — all {len(result.nodes)} nodes agree")
    else:
        verdict = []
        if drifting:
            verdict.append(
                f"{len(drifting)} drifting node{'s' if len(drifting) != 1 else ''}: {_names(drifting, max_names)}"
            )
        if failing:
            verdict.append(
                f"{len(failing)} failing node{'s' if len(failing) != 1 else ''}: {_names(failing, max_names)}"
            )
        if result.problems:
            verdict.append(f"{len(result.problems)} unreadable file{'s' if len(result.problems) != 1 else ''}")
        lines.append("Result: " + "; ".join(verdict))
    return "\n".join(_clip(line, width) for line in lines) + "\n"


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def to_dict(result: FleetResult) -> dict[str, Any]:
    """The JSON view (schema ``autoglm-doctor/fleet@1``): full node lists, nothing truncated."""
    return {
        "schema": FLEET_SCHEMA,
        "status": "drift" if result.drift else "same",
        "nodes": len(result.nodes),
        "files_read": result.files_read,
        "drifting_nodes": result.drifting_nodes,
        "failing_nodes": result.failing_nodes,
        "attributes": {
            a.attribute.key: {
                "label": a.attribute.label,
                "majority": a.majority,
                "counts": a.counts,
                "deviating": a.deviating,
                "unknown": a.unknown,
            }
            for a in result.attributes
        },
        "groups": [{"count": len(g.nodes), "values": g.values, "nodes": g.nodes} for g in result.groups],
        "unreadable": [{"file": p.file, "error": p.error} for p in result.problems],
        "exit_code": result.exit_code(),
    }


def render_json(result: FleetResult) -> str:
    """The JSON view as indented text."""
    return json.dumps(to_dict(result), indent=2, ensure_ascii=False) + "\n"


def terminal_width() -> int:
    """Line width for the human view (``COLUMNS``, else 100)."""
    try:
        return max(60, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 100
