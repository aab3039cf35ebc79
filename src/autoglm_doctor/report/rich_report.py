"""The human report: grouped by category, one dot-leader line per check, findings with their fix.

The output is deterministic for a given report and options: no terminal sniffing happens here
(the CLI decides ``color`` and ``width``), durations appear only with ``verbose``, and long
lines are never hard-wrapped, so a fix command can be copied from the terminal as one line.

Lines are built as styled spans (:class:`Text`). With colour they are printed through rich;
without colour (pipes, files, CI logs) they are joined as rich would join them, without paying
for importing rich (a tenth of a no-smoke run).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import counts_phrase, evidence, strict_note
from autoglm_doctor.report.options import RenderOptions

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

if TYPE_CHECKING:
    import rich.text

# rich.control.strip_control_codes: rich drops these from every piece of Text.
_CONTROL_CODES = dict.fromkeys((7, 8, 11, 12, 13))
_TRAILING_SPACE = re.compile(r"\s+$")  # rich.text._re_whitespace (Text.rstrip_end)


class Text:
    """One printed line (it may hold newlines): a base style plus styled spans, as ``rich.text.Text``."""

    def __init__(self, text: str = "", style: str = "") -> None:
        self.style = style
        self.spans: list[tuple[str, str]] = [(text, "")]

    def append(self, text: str, style: str = "") -> Text:
        """Add a span (``style`` applies on top of the line's)."""
        self.spans.append((text, style))
        return self

    @property
    def plain(self) -> str:
        """The text without styles, control codes removed as rich removes them."""
        return "".join(text for text, _ in self.spans).translate(_CONTROL_CODES)

    def to_rich(self) -> rich.text.Text:
        """The same line as a rich Text."""
        from rich.text import Text as RichText

        first, _ = self.spans[0]
        line = RichText(first, style=self.style)
        for text, style in self.spans[1:]:
            line.append(text, style=style or None)
        return line


def _plain_line(text: Text, width: int) -> str | None:
    """What rich prints for ``text`` without colour in soft-wrap mode; None where only rich knows.

    rich expands tabs by column, and rich 13 (not 14+) trims whitespace that ends a line
    longer than the width: such lines go through rich itself.
    """
    plain = text.plain
    if "\t" in plain:
        return None
    for line in plain.split("\n"):
        if len(line) > width and _TRAILING_SPACE.search(line):
            return None
    return plain + "\n"


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
    if finding.observed and "\n" in finding.observed:
        # A multi-line excerpt (a config line and its caret): keep its columns aligned.
        pad = _DETAIL_INDENT + " " * len("observed: ")
        lines.append(Text(_DETAIL_INDENT + "observed: " + _indented(finding.observed, pad), style="dim"))
        if finding.expected:
            expected = "expected: " + finding.expected
            lines.append(Text(_DETAIL_INDENT + _indented(expected, _DETAIL_INDENT), style="dim"))
    elif seen := evidence(finding).replace("; ", "   "):
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
    lines = _report_lines(report, options)
    if not options.color:
        plain = [_plain_line(line, options.width) for line in lines]
        if all(text is not None for text in plain):
            return "".join(text for text in plain if text is not None)
    return _render_with_rich(lines, options)


def _render_with_rich(lines: list[Text], options: RenderOptions) -> str:
    import io

    from rich.console import Console

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
    for line in lines:
        console.print(line.to_rich())
    return out.getvalue()


def _report_lines(report: Report, options: RenderOptions) -> list[Text]:
    """Every printed line of the report, in order (an empty Text is a blank line)."""
    printed: list[Text] = []
    env = report.environment
    header = Text(f"autoglm-doctor {report.tool_version or '?'}", style="bold")
    if report.pack:
        header.append(f" · pack {report.pack}")
    if report.config:
        header.append(f" · config {report.config}")
    header.append(f" · Python {env.get('python', '?')}")
    if env.get("executable"):
        header.append(f" ({env['executable']})")
    printed.append(header)
    if env.get("platform"):
        printed.append(Text(env["platform"], style="dim"))
    hidden = 0
    for category, results in _grouped(report.results).items():
        printed.append(Text())
        printed.append(Text(category, style="bold underline"))
        for result in results:
            printed.append(_check_line(result, options.width, options.verbose))
            lines, hidden_here = _result_lines(result, options)
            hidden += hidden_here
            printed.extend(lines)
    if not report.results:
        printed.append(Text())
        printed.append(Text("no checks were selected", style="dim"))
    overall = report.status(strict=options.strict)
    printed.append(Text())
    summary = Text("Summary: ", style="bold")
    summary.append(counts_phrase(report))
    summary.append(" → ")
    summary.append(overall.value.upper(), style=_STYLE[overall] + " bold")
    summary.append(strict_note(report, strict=options.strict))
    printed.append(summary)
    if hidden:
        printed.append(Text(f"{hidden} info note{'s' if hidden != 1 else ''} hidden; -v shows them", style="dim"))
    return printed
