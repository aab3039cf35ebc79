"""Run the selected checks over one Snapshot: selection, order, isolation, timing, progress."""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from autoglm_doctor.context import CheckContext, missing_need
from autoglm_doctor.model import CheckResult, Finding, Severity, Skip, Status, error, info, status_from_findings
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import CheckSpec, PluginFailure, Registry


class SelectionError(ValueError):
    """``--only``/``--skip`` named something that matches no check (a usage error)."""


def split_ids(value: str | None) -> list[str]:
    """Comma-separated ids or globs, blanks dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def select(checks: dict[str, CheckSpec], only: str | None = None, skip: str | None = None) -> list[CheckSpec]:
    """The checks to run, in registry order; an id, glob or category that matches nothing is an error.

    A bare category (``python``, ``cuda``) means every check in it, as ``python.*`` does.
    """
    ids = list(checks)
    categories = sorted({spec.category for spec in checks.values()})

    def expand(patterns: list[str], flag: str) -> set[str]:
        chosen: set[str] = set()
        for pattern in patterns:
            matched = fnmatch.filter(ids, pattern) or [i for i in ids if checks[i].category == pattern]
            if not matched:
                raise SelectionError(f"{flag} {pattern!r} matches no check{_did_you_mean(pattern, ids, categories)}")
            chosen.update(matched)
        return chosen

    only_ids = expand(split_ids(only), "--only") if split_ids(only) else set(ids)
    skip_ids = expand(split_ids(skip), "--skip")
    return [checks[i] for i in ids if i in only_ids and i not in skip_ids]


def _did_you_mean(pattern: str, ids: list[str], categories: list[str]) -> str:
    """`` (did you mean X?)`` from the ids and categories closest to ``pattern``, else a pointer to ``list``."""
    import difflib

    close = difflib.get_close_matches(pattern, ids, n=3, cutoff=0.6) or difflib.get_close_matches(
        pattern, categories, n=3, cutoff=0.6
    )
    if not close:
        close = [i for i in ids if i.split(".")[0] == pattern.split(".")[0]][:5]
    return f" (did you mean {', '.join(close)}?)" if close else " (see `autoglm-doctor list`)"


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event: a check is about to start (result None) or has finished."""

    spec: CheckSpec
    """The check."""
    index: int
    """1-based position in the run."""
    total: int
    """Number of checks in the run."""
    result: CheckResult | None = None
    """Set when the check has finished."""


ProgressCallback = Callable[[Progress], None]


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and first line of message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_check(spec: CheckSpec, snap: Snapshot, ctx: CheckContext) -> CheckResult:
    """Run one check in isolation: never raises, times itself."""
    start = time.perf_counter()
    findings: tuple[Finding, ...] = ()
    trace = None
    reason = missing_need(spec.needs, snap, ctx)
    if reason is not None:
        status = Status.SKIP
        findings = (info(f"{spec.id}.skipped", reason),)
    else:
        try:
            findings = tuple(spec.func(snap, ctx))
            status = status_from_findings(findings)
        except Skip as exc:
            status = Status.SKIP
            findings = (*findings, info(f"{spec.id}.skipped", str(exc)))
        except Exception as exc:  # noqa: BLE001 - a crashing check becomes an `error` result
            status = Status.ERROR
            trace = traceback.format_exc()
            findings = (
                error(
                    "check.crashed",
                    f"the check itself crashed: {one_line(exc)}",
                    fix="run with -v for the traceback and report it (include `autoglm-doctor snapshot` output)",
                ),
            )
    findings = tuple(sorted(findings, key=lambda f: list(Severity).index(f.severity)))
    return CheckResult(
        id=spec.id,
        title=spec.title,
        category=spec.category,
        status=status,
        duration_ms=(time.perf_counter() - start) * 1000,
        findings=findings,
        traceback=trace,
    )


def plugin_failure_result(failure: PluginFailure) -> CheckResult:
    """A plugin that failed to load, as an ``error`` result."""
    return CheckResult(
        id=f"plugins.{failure.name}",
        title=f"Plugin {failure.name} ({failure.distribution})",
        category="plugins",
        status=Status.ERROR,
        findings=(
            error(
                "plugin.load-failed",
                failure.message,
                fix=f"upgrade or uninstall {failure.distribution} (pip uninstall {failure.distribution})",
            ),
        ),
        traceback=failure.traceback,
    )


def run(
    registry: Registry,
    selected: Iterable[CheckSpec],
    snap: Snapshot,
    ctx: CheckContext,
    progress: ProgressCallback | None = None,
) -> list[CheckResult]:
    """Run plugin-failure results first, then the selected checks (``last`` ones at the end)."""
    results = [plugin_failure_result(f) for f in registry.failures]
    selected = list(selected)
    # A category's checks run together (in registry order), so that results printed as they
    # finish come out under one heading each, as in the whole report; ``last`` ones at the end.
    first_of: dict[str, int] = {}
    for position, spec in enumerate(selected):
        first_of.setdefault(spec.category, position)
    ordered = sorted(selected, key=lambda spec: (spec.last, first_of[spec.category]))
    for index, spec in enumerate(ordered, start=1):
        if progress is not None:
            progress(Progress(spec, index, len(ordered)))
        result = run_check(spec, snap, ctx)
        ctx.earlier[spec.id] = result
        if progress is not None:
            progress(Progress(spec, index, len(ordered), result))
        results.append(result)
    return results
