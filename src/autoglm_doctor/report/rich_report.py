"""The human report: grouped by category, one dot-leader line per check, findings with their fix.

The output is deterministic for a given report and options: no terminal sniffing happens here
(the CLI decides ``color`` and ``width``), and durations appear only with ``verbose``. Prose
(messages, evidence, skip reasons) wraps at ``width`` with a hanging indent, breaking only at
spaces; a ``fix:`` line is never broken, so a command can be copied from the terminal as one line.

The report is built in three parts, :func:`header_lines`, :func:`result_lines` and
:func:`summary_lines`, so that a run can print each result as it finishes
(:mod:`autoglm_doctor.report.stream`) and still print exactly what :func:`render` returns.

Lines are built as styled spans (:class:`Text`). With colour they are printed through rich;
without colour (pipes, files, CI logs) they are joined as rich would join them, without paying
for importing rich (a tenth of a no-smoke run).
"""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from autoglm_doctor.model import Breakdown, CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import evidence, hidden_info, strict_note, summary_phrase
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


def wrap(text: str, width: int, first_column: int, indent: str) -> str:
    """``text`` wrapped to ``width`` columns when its first line starts at ``first_column``.

    Continuation lines start with ``indent`` (a hanging indent); lines break only at spaces, so a
    path, a version range or a URL stays whole even when it is longer than the line.
    """
    if first_column > width - 20 and first_column > len(indent):  # no room after a long prefix: start below it
        return "\n" + indent + wrap(text, width, len(indent), indent)
    room = max(width, len(indent) + 20)
    paragraphs = []
    for number, paragraph in enumerate(text.split("\n")):
        lead = " " * first_column if number == 0 else indent
        filled = textwrap.fill(
            paragraph,
            width=room,
            initial_indent=lead,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
            replace_whitespace=False,
            drop_whitespace=True,
        )
        paragraphs.append(filled if paragraph.strip() else lead)
    joined = "\n".join(paragraphs)
    return joined[first_column:]


def _finding_lines(finding: Finding, width: int, verbose: bool = False) -> list[Text]:
    head = Text(_FINDING_INDENT)
    head.append(f"{finding.severity.value:<7}", style=_SEVERITY_STYLE[finding.severity])
    head.append(" ")
    column = len(_FINDING_INDENT) + 8
    if finding.location is not None:
        head.append(f"{finding.location}: ", style="bold")
        column += len(f"{finding.location}: ")
    head.append(wrap(finding.message, width, column, _DETAIL_INDENT))
    lines = [head]
    if finding.observed and "\n" in finding.observed:
        # A multi-line excerpt (a config line and its caret): keep its columns aligned.
        pad = _DETAIL_INDENT + " " * len("observed: ")
        lines.append(Text(_DETAIL_INDENT + "observed: " + _indented(finding.observed, pad), style="dim"))
        if finding.expected:
            expected = "expected: " + finding.expected
            lines.append(Text(_DETAIL_INDENT + wrap(expected, width, len(_DETAIL_INDENT), _DETAIL_INDENT), style="dim"))
    elif finding.details and not verbose:
        pass  # a grouped finding's message says what it counts; its evidence prints with its list (-v)
    elif seen := evidence(finding).replace("; ", "   "):
        lines.append(Text(_DETAIL_INDENT + wrap(seen, width, len(_DETAIL_INDENT), _DETAIL_INDENT), style="dim"))
    for breakdown in finding.breakdown:
        lines.extend(breakdown_lines(breakdown, width))
    if finding.details:
        lines.extend(_detail_lines(finding, width, verbose))
    if finding.fix:
        command, note = split_fix(finding.fix)
        fix = Text(_DETAIL_INDENT)
        fix.append("fix: ", style="bold green")
        fix.append(_indented(command, _DETAIL_INDENT + "     "))  # never wrapped: copied as it is
        lines.append(fix)
        if note:
            pad = _DETAIL_INDENT + "     "
            lines.append(Text(pad + wrap(note, width, len(pad), pad), style="dim"))
    return lines


# One glyph per part, so that the bar reads without colour too (CI logs, pipes); colours only add to it.
_BAR_GLYPHS = (("░", "dim"), ("█", "blue"), ("▓", "magenta"), ("▒", "cyan"), ("▚", "yellow"))
_BAR_SPARE = ("·", "green")
_DETAILS_SHOWN = 200
"""A grouped finding lists at most this many items under -v (the JSON report carries them all)."""


def breakdown_lines(breakdown: Breakdown, width: int) -> list[Text]:
    """A quantity as one bar across the line, then a legend with each part's amount and what is left.

    ``GPU 0 (NVIDIA GeForce RTX 4090): 23.99 GiB`` / ``[░█████…▓▓▒▒▚▚··]`` / ``░ in use by others 0.49 · …``.
    Each part takes cells in proportion to its amount (cumulative rounding, so the cells add up to the
    bar); parts that exceed the whole stretch the bar's scale and the margin shows as ``short by``.
    """
    unit = breakdown.unit
    cells = max(10, width - len(_DETAIL_INDENT) - 2)
    parts = [(name, max(amount, 0.0)) for name, amount in breakdown.parts]
    scale = max(breakdown.total, sum(amount for _, amount in parts)) or 1.0
    bar = Text(_DETAIL_INDENT + "[")
    used = 0
    running = 0.0
    for index, (_, amount) in enumerate(parts):
        running += amount
        end = round(running / scale * cells)
        glyph, style = _BAR_GLYPHS[index % len(_BAR_GLYPHS)]
        bar.append(glyph * (end - used), style=style)
        used = end
    glyph, style = _BAR_SPARE
    bar.append(glyph * (cells - used), style=style)
    bar.append("]")
    title = Text(_DETAIL_INDENT + wrap(f"{breakdown.label}: {breakdown.total:.2f} {unit}", width, 14, _DETAIL_INDENT))
    legend = [
        f"{_BAR_GLYPHS[index % len(_BAR_GLYPHS)][0]} {name} {amount:.2f}" for index, (name, amount) in enumerate(parts)
    ]
    notes = dict(breakdown.notes)
    left = (f"{_BAR_SPARE[0]} " if breakdown.margin >= 0 else "") + breakdown.margin_text()
    if "error_bar" in notes:
        left += f"; estimate error ±{notes['error_bar']:.2f} {unit}"
    legend.append(left)
    text = ", ".join(legend)
    return [
        title,
        bar,
        Text(_DETAIL_INDENT + wrap(text, width, len(_DETAIL_INDENT), _DETAIL_INDENT), style="dim"),
    ]


def _detail_lines(finding: Finding, width: int, verbose: bool) -> list[Text]:
    """The items of a grouped finding: listed with ``verbose``, else counted with how to see them."""
    count = len(finding.details)
    if not verbose:
        hint = f"{_DETAIL_INDENT}({count} line{'s' if count != 1 else ''} behind this: -v lists them)"
        return [Text(hint, style="dim")]
    shown = finding.details[:_DETAILS_SHOWN]
    lines = [
        Text(_DETAIL_INDENT + "- " + wrap(item, width, len(_DETAIL_INDENT) + 2, _DETAIL_INDENT + "  "), style="dim")
        for item in shown
    ]
    if count > len(shown):
        more = f"{_DETAIL_INDENT}... {count - len(shown)} more (--format json lists every one)"
        lines.append(Text(more, style="dim"))
    return lines


_FIX_NOTE = re.compile(r"^(?P<command>\S.*?\S)\s{2,}(?:#\s*(?P<hash>.+)|\((?P<paren>.+)\))\s*$")


def split_fix(fix: str) -> tuple[str, str]:
    """A one-line fix as (the command, the prose after it): ``cmd   (or ...)`` and ``cmd   # or ...``.

    The command line then holds only what to run, so it can be copied as it is; the note prints
    below it. Anything else is all command.
    """
    match = _FIX_NOTE.match(fix) if "\n" not in fix else None
    if match is None:
        return fix, ""
    return match["command"], (match["hash"] or match["paren"]).strip()


def _findings_under(result: CheckResult, options: RenderOptions) -> list[Text]:
    """The lines under one check line (info findings only with ``verbose``)."""
    if result.status is Status.SKIP:
        return [
            Text(_FINDING_INDENT + wrap(f.message, options.width, len(_FINDING_INDENT), _FINDING_INDENT), style="dim")
            for f in result.findings
        ]
    lines: list[Text] = []
    for finding in result.findings:
        if finding.severity is Severity.INFO and not options.verbose:
            continue
        lines.extend(_finding_lines(finding, options.width, options.verbose))
    if options.verbose and result.traceback:
        lines.append(Text(_indented(_FINDING_INDENT + result.traceback.rstrip(), _FINDING_INDENT), style="dim"))
    return lines


def render(report: Report, options: RenderOptions) -> str:
    """The report as text for a person; ANSI colour only when ``options.color``."""
    return to_text(_report_lines(report, options), options)


def to_text(lines: list[Text], options: RenderOptions) -> str:
    """Printed lines as one string, as rich prints them (ANSI colour only when ``options.color``)."""
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


def header_lines(report: Report) -> list[Text]:
    """The tool, pack and target, and the target's platform (the results need not be there yet)."""
    env = report.environment
    first = f"autoglm-doctor {report.tool_version or '?'}"
    if report.pack:
        first += f" · pack {report.pack}"
    if report.config:
        first += f" · config {report.config}"
    first += f" · Python {env.get('python', '?')}"
    if env.get("executable"):
        first += f" ({env['executable']})"
    # Identification lines stay whole (a path is searched for, copied, compared): never wrapped.
    printed = [Text(first, style="bold")]
    if report.role_evidence:  # the doctor chose the packs: say why (no --pack was given)
        printed.append(Text(f"role: {', '.join(report.packs)}, because {'; '.join(report.role_evidence)}"))
    if report.target:
        printed.append(Text(f"target: {report.target}", style="dim"))
    if env.get("platform"):
        printed.append(Text(env["platform"], style="dim"))
    return printed


def result_lines(result: CheckResult, options: RenderOptions, previous_category: str | None) -> list[Text]:
    """One check's lines, under a category heading when its category differs from the previous result's."""
    printed: list[Text] = []
    if result.category != previous_category:
        printed.append(Text())
        printed.append(Text(result.category, style="bold underline"))
    printed.append(_check_line(result, options.width, options.verbose))
    printed.extend(_findings_under(result, options))
    return printed


def summary_lines(report: Report, options: RenderOptions) -> list[Text]:
    """The closing lines: checks by status and findings by severity, the verdict, hidden notes."""
    printed: list[Text] = []
    if not report.results:
        printed.append(Text())
        printed.append(Text("no checks were selected", style="dim"))
    overall = report.status(strict=options.strict)
    printed.append(Text())
    summary = Text("Summary: ", style="bold")
    verdict = overall.value.upper()
    phrase = summary_phrase(report, verbose=options.verbose) + " →"
    indent = " " * len("Summary: ")
    if len(indent) + len(phrase) + 1 + len(verdict) > options.width:  # checks on one line, findings below
        phrase = phrase.replace(" · ", "\n" + indent, 1)
    summary.append(phrase + " ")
    summary.append(verdict, style=_STYLE[overall] + " bold")
    summary.append(strict_note(report, strict=options.strict))
    printed.append(summary)
    if report.not_applicable:
        count = len(report.not_applicable)
        roles = ", ".join(report.packs)
        if options.verbose:
            printed.append(Text(f"{count} check{'s' if count != 1 else ''} not run: not part of {roles}", style="dim"))
            printed.extend(Text(f"  {i} ({title}): {why}", style="dim") for i, title, why in report.not_applicable)
        else:
            printed.append(
                Text(
                    f"{count} check{'s do' if count != 1 else ' does'} not apply to {roles} (-v lists them)",
                    style="dim",
                )
            )
    hidden = 0 if options.verbose else hidden_info(report)
    if hidden:
        which = "them" if hidden != 1 else "it"
        printed.append(Text(f"{hidden} info note{'s' if hidden != 1 else ''} hidden (-v shows {which})", style="dim"))
    return printed


def _grouped(results: tuple[CheckResult, ...]) -> list[CheckResult]:
    """Results with each category together, categories in order of first appearance (a plugin may reuse one)."""
    groups: dict[str, list[CheckResult]] = {}
    for result in results:
        groups.setdefault(result.category, []).append(result)
    return [result for group in groups.values() for result in group]


def _report_lines(report: Report, options: RenderOptions) -> list[Text]:
    """Every printed line of the report, in order (an empty Text is a blank line)."""
    printed = header_lines(report)
    previous: str | None = None
    for result in _grouped(report.results):
        printed.extend(result_lines(result, options, previous))
        previous = result.category
    printed.extend(summary_lines(report, options))
    return printed
