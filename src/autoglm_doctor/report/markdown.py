"""A Markdown report to paste into a bug report or a pull-request comment (GitHub-flavoured).

A header with the overall status and where it ran, a table of every check, then one section
per check that did not pass, with each finding, what was observed and expected, and the fix
as a code block. Text from findings is escaped so that it renders as written: Markdown
punctuation outside `code spans` is backslash-escaped and code uses fences longer than any
backtick run inside it.
"""

from __future__ import annotations

import re

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import counted_findings, skip_reason, strict_note, summary_phrase
from autoglm_doctor.report.options import RenderOptions

_ICON = {
    Status.PASS: "✅",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.SKIP: "⏭️",
    Status.ERROR: "💥",
}
_SEVERITY_WORD = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
# Characters that start Markdown constructs anywhere in a line (``|`` matters in tables only, ``>`` at
# a line start only, which an inline text never is), and ``<`` where it could open an HTML tag.
_SPECIAL = re.compile(r"([\\*\[\]~]|<(?=[A-Za-z/!?]))")
# An underscore that could open or close emphasis: not between two word characters.
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def _escape_plain(text: str) -> str:
    text = _SPECIAL.sub(r"\\\1", text)
    return _LOOSE_UNDERSCORE.sub(r"\\_", text)


def inline(text: str) -> str:
    """Prose from a finding as Markdown: `code spans` kept, everything else escaped, one line."""
    out: list[str] = []
    pos = 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos : match.start()]))
        out.append(match.group(0).replace("\n", " "))
        pos = match.end()
    out.append(_escape_plain(text[pos:]))
    return "<br>".join(part.strip() for part in "".join(out).splitlines()) if "\n" in text else "".join(out)


def code(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    text = " ".join(text.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """Text for a table cell: pipes escaped, no line breaks."""
    return text.replace("|", "\\|").replace("\n", " ")


def block(text: str, indent: str = "", lang: str = "") -> list[str]:
    """``text`` as a fenced code block (fence longer than any backtick run inside)."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    lines = [f"{indent}{fence}{lang}"]
    lines += [f"{indent}{line}".rstrip() for line in text.rstrip("\n").splitlines()]
    lines.append(f"{indent}{fence}")
    return lines


def _tally(result: CheckResult, verbose: bool) -> str:
    if result.status is Status.SKIP:
        return inline(skip_reason(result))
    shown = counted_findings(result, verbose=verbose)
    if not shown:
        return ""
    parts = []
    for severity in Severity:
        n = sum(1 for f in shown if f.severity is severity)
        if n:
            word = _SEVERITY_WORD[severity]
            parts.append(f"{n} {word}{'s' if n != 1 and severity is not Severity.INFO else ''}")
    return ", ".join(parts)


def _finding(finding: Finding) -> list[str]:
    lines = [f"- **{finding.severity.value}** {code(finding.code)}: {inline(finding.message)}"]
    if finding.location is not None:
        lines.append(f"  - location: {code(str(finding.location))}")
    if finding.observed:
        lines.append(f"  - observed: {code(finding.observed)}")
    if finding.expected:
        lines.append(f"  - expected: {code(finding.expected)}")
    for breakdown in finding.breakdown:
        parts = ", ".join(f"{inline(name)} {amount:.2f}" for name, amount in breakdown.parts)
        left = inline(breakdown.margin_text())
        lines.append(f"  - {inline(breakdown.label)}: {breakdown.total:.2f} {breakdown.unit}: {parts}; {left}")
    if finding.details:
        count = len(finding.details)
        lines.append(f"  - <details><summary>{count} line{'s' if count != 1 else ''}</summary>")
        lines.append("")
        lines += [f"    - {inline(item)}" for item in finding.details]
        lines.append("")
        lines.append("    </details>")
    if finding.fix:
        lines.append("  - fix:")
        lines.append("")
        lines += block(finding.fix, indent="    ")
        lines.append("")
    return lines


def _section(result: CheckResult) -> list[str]:
    lines = [
        f"#### {_ICON[result.status]} {code(result.id)}: {inline(result.title)} ({result.status.value})",
        "",
    ]
    for finding in counted_findings(result, verbose=True):
        lines += _finding(finding)
    if result.traceback:
        while lines[-1] == "":
            lines.pop()
        lines += ["", "<details><summary>traceback</summary>", ""]
        lines += block(result.traceback, lang="pytb")
        lines += ["", "</details>"]
    while lines and lines[-1] == "":
        lines.pop()
    lines.append("")
    return lines


def render(report: Report, options: RenderOptions) -> str:
    """The report as GitHub-flavoured Markdown."""
    overall = report.status(strict=options.strict)
    env = report.environment
    lines = [
        f"## autoglm-doctor: {_ICON[overall]} {overall.value.upper()}",
        "",
        summary_phrase(report, verbose=options.verbose) + strict_note(report, strict=options.strict),
        "",
        "| | |",
        "|---|---|",
        f"| Tool | autoglm-doctor {_cell(report.tool_version or '?')} |",
    ]
    if report.pack:
        lines.append(f"| Pack | {_cell(report.pack)} |")
    if report.config:
        lines.append(f"| Config | {_cell(code(report.config))} |")
    if report.role_evidence:
        lines.append(f"| Role | {_cell(inline('; '.join(report.role_evidence)))} |")
    if report.not_applicable:
        left_out = ", ".join(code(check_id) for check_id, _, _ in report.not_applicable)
        lines.append(f"| Not part of this role (not run) | {_cell(left_out)} |")
    python = env.get("python", "?")
    if env.get("executable"):
        python += f" ({code(env['executable'])})"
    lines.append(f"| Python | {_cell(python)} |")
    if env.get("platform"):
        lines.append(f"| Platform | {_cell(env['platform'])} |")
    if report.created:
        lines.append(f"| Created | {_cell(report.created)} |")
    lines += ["", "### Checks", ""]
    if options.verbose:
        lines += ["| Check | Title | Status | Time | Findings |", "|---|---|---|---:|---|"]
    else:
        lines += ["| Check | Title | Status | Findings |", "|---|---|---|---|"]
    for result in report.results:
        cells = [
            code(result.id),
            inline(result.title),
            f"{_ICON[result.status]} {result.status.value}",
        ]
        if options.verbose:
            cells.append(f"{result.duration_ms:.1f} ms")
        cells.append(_tally(result, options.verbose))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    details = [
        r
        for r in report.results
        if r.status in (Status.WARN, Status.FAIL, Status.ERROR)
        or (options.verbose and r.status is Status.PASS and r.findings)
    ]
    if details:
        lines += ["", "### Findings" if options.verbose else "### Problems", ""]
        for result in details:
            lines += _section(result)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
