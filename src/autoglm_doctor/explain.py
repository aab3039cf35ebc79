"""``autoglm-doctor explain``: what a check id, a finding code or a category means.

The text comes from the registry (each check's title, decides/why/fix) and from
``docs/checks/ID.md``, which the wheel ships as ``autoglm_doctor/_docs/checks``: its findings
table (``| `code` | severity | example | fix |``) is where a finding code printed in a report is
explained. Nothing here is typed twice: a code is explained by the row its check's page has.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoglm_doctor.registry import CheckSpec, Registry, describe

_ROW = re.compile(
    r"^\|\s*`(?P<code>[a-z0-9][a-z0-9._-]*)`\s*\|\s*(?P<severity>error|warning|info)\s*\|(?P<rest>.*)\|\s*$"
)


class UnknownTopic(LookupError):
    """The name is neither a check id, a finding code nor a category (a usage error)."""


@dataclass(frozen=True, slots=True)
class FindingDoc:
    """One row of a check page's findings table."""

    code: str
    """The finding code, as reports print it."""
    check: str
    """The check whose page documents it."""
    severity: str
    """error, warning or info."""
    example: str
    """An example message."""
    fix: str
    """What to do."""


def docs_dir() -> Path:
    """Folder of the per-check pages: inside the wheel, or ``docs/checks`` of a source checkout."""
    shipped = Path(__file__).parent / "_docs" / "checks"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "docs" / "checks"


def _split_cells(rest: str) -> list[str]:
    """Table cells after the severity; a ``|`` inside backquotes belongs to its cell."""
    cells: list[str] = []
    current: list[str] = []
    quoted = False
    for char in rest:
        if char == "`":
            quoted = not quoted
        if char == "|" and not quoted:
            cells.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    cells.append("".join(current).strip())
    return cells


def finding_docs(folder: Path | None = None) -> dict[str, FindingDoc]:
    """Every documented finding code, from the findings tables of the check pages."""
    found: dict[str, FindingDoc] = {}
    folder = folder or docs_dir()
    for page in sorted(folder.glob("*.md")):
        check_id = page.name.removesuffix(".md")
        for line in page.read_text(encoding="utf-8").splitlines():
            row = _ROW.match(line)
            if row is None:
                continue
            cells = [*_split_cells(row["rest"]), "", ""]
            found.setdefault(row["code"], FindingDoc(row["code"], check_id, row["severity"], cells[0], cells[1]))
    return found


def _page(check_id: str) -> Path | None:
    path = docs_dir() / f"{check_id}.md"
    return path if path.is_file() else None


def _check_data(spec: CheckSpec, codes: dict[str, FindingDoc]) -> dict[str, Any]:
    data = describe(spec)
    page = _page(spec.id)
    data["findings"] = [
        {"code": d.code, "severity": d.severity, "example": d.example, "fix": d.fix}
        for d in codes.values()
        if d.check == spec.id
    ]
    data["doc"] = page.read_text(encoding="utf-8") if page else ""
    return data


def explain(name: str, registry: Registry) -> dict[str, Any]:
    """What ``name`` is: ``{"kind": "check"|"finding"|"category", ...}``; raises :class:`UnknownTopic`."""
    codes = finding_docs()
    checks = registry.checks
    if name in checks:
        return {"kind": "check", **_check_data(checks[name], codes)}
    if name in codes or name.endswith(".skipped") and name.removesuffix(".skipped") in checks:
        doc = codes.get(name)
        if doc is None:  # ``<check id>.skipped``: the runner's own code for "could not apply here"
            owner = name.removesuffix(".skipped")
            doc = FindingDoc(name, owner, "info", f"{owner} did not apply here (the reason follows)", "")
        spec = checks.get(doc.check)
        return {
            "kind": "finding",
            "code": doc.code,
            "severity": doc.severity,
            "example": doc.example,
            "fix": doc.fix,
            "check": doc.check,
            "check_title": spec.title if spec else "",
        }
    in_category = [spec for spec in checks.values() if spec.category == name]
    if in_category:
        return {"kind": "category", "category": name, "checks": [describe(spec) for spec in in_category]}
    known = [*checks, *codes, *sorted({spec.category for spec in checks.values()})]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see `autoglm-doctor list`"
    raise UnknownTopic(f"unknown check id {name!r}, and no finding code or category is called that ({hint})")


def as_text(data: dict[str, Any]) -> str:
    """The explanation for a person."""
    if data["kind"] == "finding":
        lines = [
            f"{data['code']} ({data['severity']}), found by {data['check']}: {data['check_title']}",
            "",
            f"Example:  {data['example'] or '(not documented)'}",
            f"Fix:      {data['fix'] or '(not documented)'}",
            "",
            f"More: autoglm-doctor explain {data['check']}",
        ]
        return "\n".join(lines)
    if data["kind"] == "category":
        width = max(len(c["id"]) for c in data["checks"])
        lines = [f"{data['category']}: {len(data['checks'])} checks", ""]
        lines += [f"  {c['id']:<{width}}  {c['title']}" for c in data["checks"]]
        return "\n".join(lines)
    lines = [
        f"{data['id']}: {data['title']}",
        "",
        f"Decides:  {data['decides'] or '(not documented)'}",
        f"Why:      {data['why'] or '(not documented)'}",
        f"Fix:      {data['fix'] or '(not documented)'}",
    ]
    if data["needs"]:
        lines.append(f"Needs:    {', '.join(data['needs'])} (skipped without)")
    if data["origin"] != "autoglm-doctor":
        lines.append(f"From:     {data['origin']}")
    if data["findings"]:
        lines += ["", "Findings:"]
        width = max(len(f["code"]) for f in data["findings"])
        lines += [f"  {f['code']:<{width}}  {f['severity']:<7}  {f['example']}" for f in data["findings"]]
        lines += ["", f"`autoglm-doctor explain CODE` for one finding; the full page is docs/checks/{data['id']}.md"]
    return "\n".join(lines)
