"""SARIF 2.1.0 for code-scanning UIs: one rule per check, one result per finding.

Rules are the checks of the run (``id`` = check id, short description = its title, help = its
fix advice); a result carries its finding's code in ``properties.code`` and, when the finding
has a place, a physical location: a path relative to ``%SRCROOT%`` (``$GITHUB_WORKSPACE``, else
the git root), since code scanning matches alerts to repository files. A file outside the
repository gets no location (code scanning cannot show it): its path and line open the message.
Severity maps error → ``error``, warning → ``warning``, info → ``note`` (info findings only
with ``-v``); a crashed check is an ``error``. Skipped checks produce no result. Every result
keeps the same text the other formats print (message, evidence, fix).
"""

from __future__ import annotations

import json
from typing import Any

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import evidence, repo_relative, source_root
from autoglm_doctor.report.options import RenderOptions

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_ROOT = "%SRCROOT%"


def _rule(result: CheckResult) -> dict[str, Any]:
    from autoglm_doctor import registry

    spec = registry.load().checks.get(result.id)
    rule: dict[str, Any] = {
        "id": result.id,
        "name": result.title,
        "shortDescription": {"text": result.title},
        "properties": {"category": result.category},
    }
    if spec is not None and spec.decides:
        rule["fullDescription"] = {"text": spec.decides}
    if spec is not None and spec.fix:
        rule["help"] = {"text": spec.fix}
    return rule


def _location(finding: Finding) -> dict[str, Any] | None:
    if finding.location is None:
        return None
    path, inside = repo_relative(finding.location.file)
    if not inside:
        return None
    artifact: dict[str, Any] = {"uri": path, "uriBaseId": _ROOT}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if finding.location.line is not None:
        region: dict[str, Any] = {"startLine": finding.location.line}
        if finding.location.column is not None:
            region["startColumn"] = finding.location.column
        physical["region"] = region
    return {"physicalLocation": physical}


def _result(result: CheckResult, rule_index: int, finding: Finding) -> dict[str, Any]:
    where = _location(finding)
    outside = f"{finding.location}: " if finding.location is not None and where is None else ""
    text = [outside + finding.message]
    if seen := evidence(finding):
        text.append(seen)
    if finding.fix:
        text.append(f"fix: {finding.fix}")
    level = "error" if result.status is Status.ERROR else _LEVEL[finding.severity]
    out: dict[str, Any] = {
        "ruleId": result.id,
        "ruleIndex": rule_index,
        "level": level,
        "message": {"text": "\n".join(text)},
        "properties": {"code": finding.code},
    }
    if where is not None:
        out["locations"] = [where]
    return out


def document(report: Report, options: RenderOptions) -> dict[str, Any]:
    """The SARIF log as plain data."""
    rules: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for result in report.results:
        index = len(rules)
        rules.append(_rule(result))
        if result.status is Status.SKIP:
            continue
        for finding in result.findings:
            if finding.severity is Severity.INFO and not options.verbose and result.status is not Status.ERROR:
                continue
            results.append(_result(result, index, finding))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "autoglm-doctor",
                "version": report.tool_version or "0",
                "informationUri": "https://github.com/autoglm-doctor/autoglm-doctor",
                "rules": rules,
            }
        },
        "results": results,
        "invocations": [
            {
                "executionSuccessful": True,
                "properties": {"status": report.status(strict=options.strict).value, "pack": report.pack},
            }
        ],
    }
    root = source_root()
    if root is not None:
        run["originalUriBaseIds"] = {_ROOT: {"uri": root.as_uri() + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, options: RenderOptions) -> str:
    """The report as a SARIF 2.1.0 log (indented JSON)."""
    return json.dumps(document(report, options), indent=2, ensure_ascii=False) + "\n"
