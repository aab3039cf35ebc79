"""The human report: grouped by category, one dot-leader line per check, findings with their fix.

The output is deterministic for a given report and options: no terminal sniffing happens here
(the CLI decides ``color`` and ``width``), durations appear only with ``verbose``, and long
lines are never hard-wrapped, so a fix command can be copied from the terminal as one line.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report import RenderOptions
from autoglm_doctor.report._common import counts_phrase, evidence, strict_note

_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.SKIP: "dim",
    Status.ERROR: "bold red",
}
_WORD = {
    Status.PASS: "passed",
    Status.WARN: "warning",
    Status.FAIL: "failed",
    Status.SKIP: "skipped",
    Status.ERROR: "error",
}
_SEVERITY_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_CHECK_INDENT = "  "
_FINDING_INDENT = "      "
_DETAIL_INDENT = " " * 14


def _check_line(result: CheckResult, width: int, verbose: bool) -> Text:
    """``  ✓ Title (id) ........ passed``: the status word ends at ``width`` (unless the title is too long)."""
    word = _WORD[result.status]
    timing = f" {result.duration_ms:7.1f} ms" if verbose else ""
    head = f"{_CHECK_INDENT}{result.status.symbol} {result.title} ({result.id}) "
    dots = max(3, width - len(head) - len(word) - len(timing) - 1)
    line = Text(_CHECK_INDENT)
    line.append(result.status.symbol, style=_STYLE[result.status])
    line.append(f" {result.title} ")
    line.append(f"({result.id})", style="dim")
    line.append(" " + "." * dots + " ", style="dim")
    line.append(word, style=_STYLE[result.status])
    line.append(timing, style="dim")
    return line


def _indented(text: str, indent: str) -> str:
    """Continuation lines of a multi-line message or fix, indented under the first."""
    return text.replace("\n", "\n" + indent)


def _finding_lines(finding: Finding) -> list[Text]:
    head = Text(_FINDING_INDENT)
    head.append(f"{finding.severity.value:<7}", style=_SEVERITY_STYLE[finding.severity])
    head.append(" ")
    if finding.location is not None:
        head.append(f"{finding.location}: ", style="bold")
    head.append(_indented(finding.message, _DETAIL_INDENT))
    lines = [head]
    seen = evidence(finding).replace("; ", "   ")
    if seen:
        lines.append(Text(_DETAIL_INDENT + _indented(seen, _DETAIL_INDENT), style="dim"))
    if finding.fix:
        fix = Text(_DETAIL_INDENT)
        fix.append("fix: ", style="bold green")
        fix.append(_indented(finding.fix, _DETAIL_INDENT + "     "))
        lines.append(fix)
    return lines


def _result_lines(result: CheckResult, options: RenderOptions) -> tuple[list[Text], int]:
    """The lines under one check line, and how many info findings were left out."""
    if result.status is Status.SKIP:
        return [Text(_FINDING_INDENT + _indented(f.message, _FINDING_INDENT), style="dim") for f in result.findings], 0
    lines: list[Text] = []
    hidden = 0
    for finding in result.findings:
        if finding.severity is Severity.INFO and not options.verbose:
            hidden += 1
            continue
        lines.extend(_finding_lines(finding))
    if options.verbose and result.traceback:
        lines.append(Text(_indented(_FINDING_INDENT + result.traceback.rstrip(), _FINDING_INDENT), style="dim"))
    return lines, hidden


def _grouped(results: tuple[CheckResult, ...]) -> dict[str, list[CheckResult]]:
    """Results by category, categories in order of first appearance (a plugin may reuse one)."""
    groups: dict[str, list[CheckResult]] = {}
    for result in results:
        groups.setdefault(result.category, []).append(result)
    return groups


def render(report: Report, options: RenderOptions) -> str:
    """The report as text for a person; ANSI colour only when ``options.color``."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=options.width,
        height=25,
        force_terminal=options.color,
        force_jupyter=False,
        force_interactive=False,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        legacy_windows=False,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        _environ={},
    )
    env = report.environment
    header = Text(f"autoglm-doctor {report.tool_version or '?'}", style="bold")
    if report.pack:
        header.append(f" · pack {report.pack}")
    header.append(f" · Python {env.get('python', '?')}")
    if env.get("executable"):
        header.append(f" ({env['executable']})")
    console.print(header)
    if env.get("platform"):
        console.print(Text(env["platform"], style="dim"))
    hidden = 0
    for category, results in _grouped(report.results).items():
        console.print()
        console.print(Text(category, style="bold underline"))
        for result in results:
            console.print(_check_line(result, options.width, options.verbose))
            lines, hidden_here = _result_lines(result, options)
            hidden += hidden_here
            for line in lines:
                console.print(line)
    if not report.results:
        console.print()
        console.print(Text("no checks were selected", style="dim"))
    overall = report.status(strict=options.strict)
    console.print()
    summary = Text("Summary: ", style="bold")
    summary.append(counts_phrase(report))
    summary.append(" → ")
    summary.append(overall.value.upper(), style=_STYLE[overall] + " bold")
    summary.append(strict_note(report, strict=options.strict))
    console.print(summary)
    if hidden:
        console.print(Text(f"{hidden} info note{'s' if hidden != 1 else ''} hidden; -v shows them", style="dim"))
    return out.getvalue()
