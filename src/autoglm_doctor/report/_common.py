"""Wording shared by the reporters, so every format says the same thing the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from autoglm_doctor.model import CheckResult, Finding, Report, Severity, Status

_CHECK_WORDS = (("pass", "passed"), ("warn", "warned"), ("fail", "failed"), ("skip", "skipped"), ("error", "errored"))
_FINDING_NOUNS = ((Severity.ERROR, "error", "errors"), (Severity.WARNING, "warning", "warnings"))


def summary_phrase(report: Report, *, verbose: bool) -> str:
    """What a person was shown, counted: checks by status, then the findings shown by severity.

    ``22 checks: 18 passed, 1 warned, 2 failed, 1 skipped · 3 errors, 1 warning``. Zero counts are
    left out; an info note counts only where it is shown (``-v``).
    """
    counts = report.counts()
    total = len(report.results)
    checks = ", ".join(f"{counts[key]} {word}" for key, word in _CHECK_WORDS if counts[key])
    head = f"{total} check{'s' if total != 1 else ''}" + (f": {checks}" if checks else "")
    shown = [f for r in report.results for f in counted_findings(r, verbose=verbose)]
    by_severity = [
        f"{n} {one if n == 1 else many}"
        for severity, one, many in _FINDING_NOUNS
        if (n := sum(1 for f in shown if f.severity is severity))
    ]
    if verbose and (notes := sum(1 for f in shown if f.severity is Severity.INFO)):
        by_severity.append(f"{notes} info note{'s' if notes != 1 else ''}")
    return head + " · " + (", ".join(by_severity) if by_severity else "no findings")


def hidden_info(report: Report) -> int:
    """Info findings left out without ``-v`` (skip reasons are not findings)."""
    return sum(
        1 for r in report.results if r.status is not Status.SKIP for f in r.findings if f.severity is Severity.INFO
    )


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
    if strict and report.tested_nothing():
        return " (--strict: every selected check was skipped, nothing was tested)"
    return " (--strict: warnings fail the run)" if strict and report.counts()["warn"] else ""


def source_root(environ: Mapping[str, str] | None = None, start: Path | None = None) -> Path | None:
    """The folder that CI annotations are relative to: ``$GITHUB_WORKSPACE``, else the git root of ``start``."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_WORKSPACE"):
        return Path(env["GITHUB_WORKSPACE"]).absolute()
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def repo_relative(file: str, environ: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """``file`` (absolute, or relative to the working directory) as a path relative to :func:`source_root`.

    Returns (path, True) when the file lies inside the root, else (the absolute path, False), or
    the path as given when there is no root at all: GitHub attaches annotations and code-scanning
    alerts to repository paths, whatever folder the doctor ran from.
    """
    path = Path(file)
    absolute = path if path.is_absolute() else Path.cwd() / path
    absolute = Path(os.path.normpath(absolute))
    root = source_root(environ, absolute.parent)
    if root is None:
        return file, not path.is_absolute()
    if absolute != root and absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix(), True
    return absolute.as_posix(), False
