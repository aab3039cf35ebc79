"""The human report: grouped by category, one dot-leader line per check, findings with their fix."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report import RenderOptions

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


def _check_line(result: CheckResult, width: int, verbose: bool) -> Text:
    word = _WORD[result.status]
    timing = f" {result.duration_ms:7.1f} ms" if verbose else ""
    label = f"{result.status.symbol} {result.title} ({result.id}) "
    dots = max(3, width - len(label) - len(word) - len(timing) - 3)
    line = Text("  ")
    line.append(result.status.symbol, style=_STYLE[result.status])
    line.append(f" {result.title} ")
    line.append(f"({result.id})", style="dim")
    line.append(" " + "." * dots + " ", style="dim")
    line.append(word, style=_STYLE[result.status])
    line.append(timing, style="dim")
    return line


def _finding_lines(finding: Finding, status: Status, verbose: bool) -> list[Text]:
    if status is Status.SKIP:
        return [Text(f"      {finding.message}", style="dim")]
    lines = []
    head = Text("      ")
    head.append(f"{finding.severity.value:<7}", style=_SEVERITY_STYLE[finding.severity])
    head.append(" ")
    if finding.location is not None:
        head.append(f"{finding.location}: ", style="bold")
    head.append(finding.message)
    lines.append(head)
    if finding.observed or finding.expected:
        if verbose or finding.severity is not Severity.INFO:
            parts = []
            if finding.observed:
                parts.append(f"observed: {finding.observed}")
            if finding.expected:
                parts.append(f"expected: {finding.expected}")
            lines.append(Text("              " + "   ".join(parts), style="dim"))
    if finding.fix:
        fix = Text("              fix: ", style="bold green")
        fix.append(finding.fix)
        lines.append(fix)
    return lines


def render(report: Report, options: RenderOptions) -> str:
    """The report as text for a person; colour only when ``options.color``."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=options.width,
        force_terminal=options.color,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        highlight=False,
        emoji=False,
        soft_wrap=not options.color,
    )
    env = report.environment
    console.print(
        f"autoglm-doctor {escape(report.tool_version)} · pack {escape(report.pack)} · "
        f"Python {escape(env.get('python', '?'))} ({escape(env.get('executable', '?'))})",
        style="bold",
    )
    for category, group in groupby(report.results, key=lambda r: r.category):
        console.print()
        console.print(Text(category, style="bold underline"))
        for result in group:
            console.print(_check_line(result, options.width, options.verbose))
            for finding in result.findings:
                if finding.severity is Severity.INFO and not options.verbose and result.status is not Status.SKIP:
                    continue
                for line in _finding_lines(finding, result.status, options.verbose):
                    console.print(line)
            if options.verbose and result.traceback:
                console.print(Text(result.traceback.rstrip(), style="dim"))
    counts = report.counts()
    overall = report.status(strict=options.strict)
    console.print()
    summary = Text("Summary: ")
    summary.append(
        f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, "
        f"{counts['skip']} skipped, {counts['error']} errors"
    )
    summary.append(" → ")
    summary.append(overall.value.upper(), style=_STYLE[overall] + " bold")
    console.print(summary)
    return out.getvalue()
