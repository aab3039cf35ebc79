"""Reporters: one module per output format, each a pure ``render(report, options) -> str``."""

from __future__ import annotations

import enum

from autoglm_doctor.model import Report
from autoglm_doctor.records import record


class Format(str, enum.Enum):
    """Output formats of ``check``."""

    RICH = "rich"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    GITHUB = "github"


@record
class RenderOptions:
    """How to render."""

    color: bool = False
    """Use colour (rich only); off for non-terminals and under NO_COLOR."""
    width: int = 100
    """Line width for the rich report."""
    verbose: bool = False
    """Show durations, info findings and tracebacks."""
    strict: bool = False
    """Warnings count as failures in the overall status."""


def render(report: Report, fmt: Format, options: RenderOptions) -> str:
    """Render ``report`` in ``fmt``; secrets are redacted before any formatter sees them."""
    from autoglm_doctor.redact import redact_report

    report = redact_report(report)
    if fmt is Format.JSON:
        from autoglm_doctor.report import json_report as module
    elif fmt is Format.JUNIT:
        from autoglm_doctor.report import junit as module  # type: ignore[no-redef]
    elif fmt is Format.MARKDOWN:
        from autoglm_doctor.report import markdown as module  # type: ignore[no-redef]
    elif fmt is Format.GITHUB:
        from autoglm_doctor.report import github as module  # type: ignore[no-redef]
    else:
        from autoglm_doctor.report import rich_report as module  # type: ignore[no-redef]
    return module.render(report, options)
