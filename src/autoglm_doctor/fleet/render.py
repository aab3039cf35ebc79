"""Rendering: the human view (majority and deviating nodes only) and the JSON view."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from autoglm_doctor.fleet.compare import FleetResult
from autoglm_doctor.fleet.read import ATTRIBUTES

FLEET_SCHEMA = "autoglm-doctor/fleet@1"


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
    nodes, files = len(result.nodes), result.files_read
    head = (
        f"autoglm-doctor fleet · {nodes} node{'s' if nodes != 1 else ''} from {files} file{'s' if files != 1 else ''}"
    )
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
    from autoglm_doctor.output import columns

    return columns() or 100
