"""Reporters: one module per output format, each a pure ``render(report, options) -> str``."""

from __future__ import annotations

from autoglm_doctor.model import Report
from autoglm_doctor.report.options import Format, RenderOptions

__all__ = ["Format", "RenderOptions", "render"]


def render(report: Report, fmt: Format, options: RenderOptions) -> str:
    """Render ``report`` in ``fmt``; secrets are redacted before any formatter sees them."""
    from autoglm_doctor.redact import redact_report
    from autoglm_doctor.textsafe import escape_json_text, escape_report

    report = redact_report(report)
    if fmt is not Format.JSON:
        # ESC bytes from inspected names never reach a terminal, nor `::` a CI runner (GitHub's writer escapes its own)
        report = escape_report(report, defuse=fmt is not Format.GITHUB)
    if fmt is Format.JSON:
        from autoglm_doctor.report import json_report as module
    elif fmt is Format.JUNIT:
        from autoglm_doctor.report import junit as module  # type: ignore[no-redef]
    elif fmt is Format.MARKDOWN:
        from autoglm_doctor.report import markdown as module  # type: ignore[no-redef]
    elif fmt is Format.GITHUB:
        from autoglm_doctor.report import github as module  # type: ignore[no-redef]
    elif fmt is Format.SARIF:
        from autoglm_doctor.report import sarif as module  # type: ignore[no-redef]
    else:
        from autoglm_doctor.report import rich_report as module  # type: ignore[no-redef]
    text = module.render(report, options)
    return escape_json_text(text) if fmt is Format.JSON else text
