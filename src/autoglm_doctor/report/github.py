"""GitHub Actions workflow commands: one annotation per finding, then a one-line summary.

``::error`` for error findings (and crashed checks), ``::warning`` for warnings, ``::notice``
for info findings with ``-v``. ``file``, ``line`` and ``col`` are set only when the finding
has a location inside the repository; the path is made relative to ``$GITHUB_WORKSPACE`` (else to
the git root), whatever the working directory, since GitHub attaches annotations to repository
paths. A file outside it (``/etc/autoglm.yaml``, a model folder) cannot be annotated: its path and
line open the message instead. The fix follows the message on its own line.

Escaping follows GitHub's runner (``ActionCommand``): in the message ``%``, CR and LF become
``%25``, ``%0D``, ``%0A``; property values additionally escape ``:`` and ``,`` as ``%3A`` and
``%2C``. A message can therefore never start a second workflow command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status
from autoglm_doctor.report._common import evidence, repo_relative, strict_note, summary_phrase
from autoglm_doctor.report.options import RenderOptions

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (the part after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (``file=``, ``title=``...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _repo_path(file: str, workspace: str | None) -> tuple[str, bool]:
    """(``file`` relative to the workspace, True) when it lies inside it; else (``file``, whether it is relative)."""
    flavour = PureWindowsPath if workspace and ("\\" in workspace or ":" in workspace[1:3]) else PurePosixPath
    path = flavour(file)
    if not workspace:
        return file, not path.is_absolute()
    root = flavour(workspace)
    if path.is_absolute() and path.is_relative_to(root) and path != root:
        return path.relative_to(root).as_posix(), True
    return file, not path.is_absolute()


def annotation(
    result: CheckResult, finding: Finding, workspace: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """One workflow command for one finding of ``result``.

    With ``environ`` (the process environment when rendering a run), the path is resolved
    against the working directory and made relative to the workspace or the git root.
    """
    command = "error" if result.status is Status.ERROR else _COMMAND[finding.severity]
    props: list[tuple[str, str]] = []
    elsewhere = ""
    if finding.location is not None:
        file = finding.location.file
        shown, inside = repo_relative(file, environ) if environ is not None else _repo_path(file, workspace)
        if inside:
            props.append(("file", shown))
            if finding.location.line is not None:
                props.append(("line", str(finding.location.line)))
                if finding.location.column is not None:
                    props.append(("col", str(finding.location.column)))
        else:  # GitHub annotates repository files only: the place goes on the line that names it
            elsewhere = f"{finding.location}: "
    props.append(("title", f"{result.id} ({finding.code})"))
    message = [elsewhere + finding.message]
    seen = evidence(finding)
    if seen:
        message.append(seen)
    if finding.fix:
        message.append(f"fix: {finding.fix}")
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{command} {rendered}::{escape_data(chr(10).join(message))}"


def render(report: Report, options: RenderOptions) -> str:
    """Annotations for every error and warning finding (info ones with ``verbose``), then the summary."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    lines = []
    for result in report.results:
        if result.status is Status.SKIP:
            continue
        for finding in result.findings:
            if finding.severity is Severity.INFO and not options.verbose and result.status is not Status.ERROR:
                continue
            lines.append(annotation(result, finding, workspace, os.environ))
    overall = report.status(strict=options.strict)
    note = strict_note(report, strict=options.strict)
    read = f"pack {report.pack}" if report.pack else ""
    if report.config:
        read += f"{', ' if read else ''}config {report.config}"
    read = f" ({read})" if read else ""
    counted = summary_phrase(report, verbose=options.verbose)
    lines.append(f"autoglm-doctor {overall.value.upper()}{read}: {counted}{note}")
    return "\n".join(lines) + "\n"
