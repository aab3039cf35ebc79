"""Wording shared by the reporters, so every format says the same thing the same way."""

from __future__ import annotations

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status

_NOUNS = (
    ("pass", "passed", "passed"),
    ("warn", "warning", "warnings"),
    ("fail", "failed", "failed"),
    ("skip", "skipped", "skipped"),
    ("error", "error", "errors"),
)


def counts_phrase(report: Report) -> str:
    """``3 passed, 1 warning, 0 failed, 2 skipped, 0 errors``."""
    counts = report.counts()
    return ", ".join(f"{counts[key]} {one if counts[key] == 1 else many}" for key, one, many in _NOUNS)


def skip_reason(result: CheckResult) -> str:
    """Why a skipped check did not run (its findings' messages), or a generic reason."""
    return "; ".join(f.message for f in result.findings) or "not applicable here"


def counted_findings(result: CheckResult, *, verbose: bool) -> tuple[Finding, ...]:
    """The findings worth showing: info ones only with ``verbose`` (a skip's reason is not a finding)."""
    if result.status is Status.SKIP:
        return ()
    return tuple(f for f in result.findings if verbose or f.severity is not Severity.INFO)


def fails_run(result: CheckResult, *, strict: bool) -> bool:
    """Whether this result makes the run fail (``--strict`` turns warnings into failures)."""
    return result.status in (Status.FAIL, Status.ERROR) or (strict and result.status is Status.WARN)


def evidence(finding: Finding) -> str:
    """``observed: X; expected: Y`` (either part may be absent); empty without evidence."""
    parts = []
    if finding.observed:
        parts.append(f"observed: {finding.observed}")
    if finding.expected:
        parts.append(f"expected: {finding.expected}")
    return "; ".join(parts)


def strict_note(report: Report, *, strict: bool) -> str:
    """`` (--strict: warnings fail the run)`` when that is why the run fails; else empty."""
    return " (--strict: warnings fail the run)" if strict and report.counts()["warn"] else ""
