"""JUnit XML for CI test-report viewers: one testcase per check.

``classname`` is the check's category and ``name`` its id, so CI groups them like the rich
report. A failed check carries a ``<failure>``, a crashed one an ``<error>``, a skipped one a
``<skipped>`` with the reason; warnings (and, with ``-v``, info notes) of a check that did not
fail go to its ``<system-out>``. With ``--strict`` a warning check is a failure, as in the exit code.
The tree is built with ElementTree, so every value is escaped; characters XML 1.0 cannot carry
(terminal escapes, NUL) are replaced by ``?``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import evidence, fails_run, skip_reason, summary_phrase
from autoglm_doctor.report.options import RenderOptions

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SUITE_NAME = "autoglm-doctor"


def _clean(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids replaced, so the document always parses."""
    return _NOT_XML.sub("?", text)


def _seconds(duration_ms: float) -> str:
    return f"{max(duration_ms, 0.0) / 1000:.3f}"


def _finding_text(finding: Finding) -> str:
    """One finding as plain text: the message, then where, what was seen and the fix."""
    lines = [f"[{finding.severity.value}] {finding.code}: {finding.message}"]
    if finding.location is not None:
        lines.append(f"  at: {finding.location}")
    seen = evidence(finding)
    if seen:
        lines.append(f"  {seen}")
    if finding.fix:
        lines.append(f"  fix: {finding.fix}")
    return "\n".join(lines)


def _body(findings: list[Finding], traceback: str | None = None) -> str:
    text = "\n\n".join(_finding_text(f) for f in findings)
    if traceback:
        text = f"{text}\n\n{traceback.rstrip()}" if text else traceback.rstrip()
    return text


def _headline(findings: list[Finding], fallback: str) -> tuple[str, str]:
    """The (message, type) attributes: the first finding's message and code, and how many more."""
    if not findings:
        return fallback, fallback
    first = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return first.message + more, first.code


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text:
        element.text = _clean(text)
    return element


def _testcase(suite: ET.Element, result: CheckResult, options: RenderOptions) -> None:
    case = _sub(suite, "testcase", classname=result.category, name=result.id, time=_seconds(result.duration_ms))
    shown = [f for f in result.findings if options.verbose or f.severity is not Severity.INFO]
    if result.status is Status.SKIP:
        _sub(case, "skipped", message=skip_reason(result))
        return
    traceback = result.traceback if options.verbose else None
    if result.status is Status.ERROR:
        message, kind = _headline(shown, "check.crashed")
        _sub(case, "error", _body(shown, traceback), message=message, type=kind)
        return
    if fails_run(result, strict=options.strict):
        problems = [f for f in shown if f.severity is Severity.ERROR] or [
            f for f in shown if f.severity is Severity.WARNING
        ]
        message, kind = _headline(problems, result.status.value)
        _sub(case, "failure", _body(shown), message=message, type=kind)
        return
    if shown:
        _sub(case, "system-out", _body(shown))


def render(report: Report, options: RenderOptions) -> str:
    """The report as a JUnit XML document (``<testsuites>`` holding one ``<testsuite>``)."""
    counts = report.counts()
    failures = sum(1 for r in report.results if r.status is not Status.ERROR and fails_run(r, strict=options.strict))
    totals = {
        "tests": str(len(report.results) + len(report.not_applicable)),
        "failures": str(failures),
        "errors": str(counts["error"]),
        "skipped": str(counts["skip"] + len(report.not_applicable)),
        "time": _seconds(sum(r.duration_ms for r in report.results)),
    }
    # pytest's JUnit schema (junit-10.xsd) allows ``skipped`` on <testsuite> only, not on <testsuites>.
    root = ET.Element("testsuites", {"name": SUITE_NAME, **{k: v for k, v in totals.items() if k != "skipped"}})
    suite_attrs = {"name": f"{SUITE_NAME} ({report.pack})" if report.pack else SUITE_NAME, **totals}
    if report.created:
        suite_attrs["timestamp"] = report.created
    suite = _sub(root, "testsuite", **suite_attrs)
    properties = _sub(suite, "properties")
    props = {
        "tool_version": report.tool_version,
        "pack": report.pack,
        **({"config": report.config} if report.config else {}),
        "status": report.status(strict=options.strict).value,
        "summary": summary_phrase(report, verbose=options.verbose),
        **{f"environment.{k}": v for k, v in report.environment.items()},
    }
    for name, value in props.items():
        _sub(properties, "property", name=name, value=value)
    for result in report.results:
        _testcase(suite, result, options)
    for check_id, _title, why in report.not_applicable:  # not run: a CI viewer still finds every id it asked for
        case = _sub(suite, "testcase", classname=check_id.split(".", 1)[0], name=check_id, time="0.000")
        _sub(case, "skipped", message=f"does not apply: {why}")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
