"""The result types every check, the runner and every reporter share.

All of them are frozen dataclasses: a check yields :class:`Finding` objects, the runner
wraps them into a :class:`CheckResult`, and the reporters read a :class:`Report`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """The verdict of one check."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def symbol(self) -> str:
        """The one-character mark a person scans for in the rich report."""
        return _SYMBOLS[self]


_SYMBOLS = {
    Status.PASS: "✓",
    Status.WARN: "!",
    Status.FAIL: "✗",
    Status.SKIP: "–",
    Status.ERROR: "✗",
}


class Severity(str, enum.Enum):
    """How much a single finding matters."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding points: a file and, when known, a line and column (1-based)."""

    file: str
    """Path of the file, as the user would type it."""
    line: int | None = None
    """1-based line number, when the finding has one."""
    column: int | None = None
    """1-based column number, when the finding has one."""

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A quantity split into named parts, in order (one GPU's memory: weights, activations, ...).

    The rich report draws it as a bar; the JSON report carries the same numbers under the finding's
    ``evidence.breakdown``, so a script reads what a person sees.
    """

    label: str
    """What is broken down (``GPU 0 (NVIDIA GeForce RTX 4090)``)."""
    unit: str
    """Unit of every number (``GiB``)."""
    total: float
    """The whole (the GPU's memory)."""
    parts: tuple[tuple[str, float], ...]
    """(name, amount) in drawing order; what is left of ``total`` after them is the margin (may be negative)."""
    notes: tuple[tuple[str, float], ...] = ()
    """Further figures that are not parts of the whole (the budget line, the error bar)."""

    @property
    def margin(self) -> float:
        """``total`` minus every part: what is left (negative: over)."""
        return self.total - sum(amount for _, amount in self.parts)

    def margin_text(self) -> str:
        """What is left or short, in words, with the unit on every figure.

        ``left 17.79 GiB: 17.65 GiB in the budget, 0.14 GiB beyond it``, or, where a note splits the
        margin into the budget and what is free beyond it (``kv_margin``, ``outside_margin``), which side
        is short: ``short by 1.97 GiB: the budget has 0.39 GiB to spare, but beyond it 2.37 GiB more is
        needed than the GPU has free``. Never a negative figure: a sign is no explanation.
        """
        unit = self.unit
        notes = dict(self.notes)
        margin = round(self.margin, 2)
        if "kv_margin" not in notes or "outside_margin" not in notes:
            return f"left {margin:.2f} {unit}" if margin >= 0 else f"short by {-margin:.2f} {unit}"
        inside, beyond = notes["kv_margin"], notes["outside_margin"]
        if inside >= 0 and beyond >= 0:
            return f"left {margin:.2f} {unit}: {inside:.2f} {unit} in the budget, {beyond:.2f} {unit} beyond it"
        head = f"short by {-margin:.2f} {unit}" if margin < 0 else f"{margin:.2f} {unit} free in all, yet short"
        budget = (
            f"the budget has {inside:.2f} {unit} to spare"
            if inside >= 0
            else f"the budget is {-inside:.2f} {unit} short"
        )
        outside = (
            f"{beyond:.2f} {unit} is spare beyond it"
            if beyond >= 0
            else f"beyond it {-beyond:.2f} {unit} more is needed than the GPU has free"
        )
        joint = ", and " if (inside < 0) == (beyond < 0) else ", but "
        return f"{head}: {budget}{joint}{outside}"

    def to_dict(self) -> dict[str, Any]:
        """The breakdown in the JSON report's shape."""
        out: dict[str, Any] = {
            "label": self.label,
            "unit": self.unit,
            "total": self.total,
            "parts": dict(self.parts),
            "margin": round(self.margin, 2),
        }
        out.update(dict(self.notes))
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem (or one notable fact) a check found."""

    severity: Severity
    """error fails the check, warning warns, info only informs."""
    code: str
    """Stable machine-readable code such as ``packages.missing``."""
    message: str
    """What is wrong, in words a tired engineer understands."""
    fix: str | None = None
    """What to do: a command to run or an edit to make."""
    location: Location | None = None
    """Where the problem is, when it has a place."""
    observed: str | None = None
    """What the doctor saw."""
    expected: str | None = None
    """What it should have been."""
    details: tuple[str, ...] = ()
    """The items a grouped finding stands for (one line each); the rich report lists them with ``-v``."""
    breakdown: tuple[Breakdown, ...] = ()
    """Quantities split into parts (one per GPU for cuda.memory); drawn as bars, carried in JSON evidence."""

    def to_dict(self) -> dict[str, Any]:
        """The finding in the JSON report's shape."""
        out: dict[str, Any] = {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
        }
        if self.fix:
            out["fix"] = self.fix
        if self.location is not None:
            loc: dict[str, Any] = {"file": self.location.file}
            if self.location.line is not None:
                loc["line"] = self.location.line
            if self.location.column is not None:
                loc["column"] = self.location.column
            out["location"] = loc
        evidence: dict[str, Any] = {k: v for k, v in (("observed", self.observed), ("expected", self.expected)) if v}
        if self.breakdown:
            evidence["breakdown"] = [b.to_dict() for b in self.breakdown]
        if evidence:
            out["evidence"] = evidence
        if self.details:
            out["details"] = list(self.details)
        return out


def error(code: str, message: str, **kwargs: Any) -> Finding:
    """Shorthand for a finding that fails its check."""
    return Finding(Severity.ERROR, code, message, **kwargs)


def warning(code: str, message: str, **kwargs: Any) -> Finding:
    """Shorthand for a finding that makes its check warn."""
    return Finding(Severity.WARNING, code, message, **kwargs)


def info(code: str, message: str, **kwargs: Any) -> Finding:
    """Shorthand for a finding that only informs."""
    return Finding(Severity.INFO, code, message, **kwargs)


class Skip(Exception):  # noqa: N818 - it is a control-flow signal, not an error
    """Raised by a check that cannot apply here; the message is the reason."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of running one check."""

    id: str
    """The check's stable id, e.g. ``packages.required``."""
    title: str
    """Short human title of the check."""
    category: str
    """Group used by the rich report (``python``, ``packages``...)."""
    status: Status
    """The verdict."""
    duration_ms: float = 0.0
    """Wall time the check took."""
    findings: tuple[Finding, ...] = ()
    """What it found, most important first."""
    traceback: str | None = None
    """Full traceback of a crashed check (shown with ``-v``)."""

    def to_dict(self) -> dict[str, Any]:
        """The result in the JSON report's shape."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "duration_ms": round(self.duration_ms, 3),
            "findings": [f.to_dict() for f in self.findings],
        }
        return out


def status_from_findings(findings: tuple[Finding, ...]) -> Status:
    """The verdict that a list of findings implies."""
    if any(f.severity is Severity.ERROR for f in findings):
        return Status.FAIL
    if any(f.severity is Severity.WARNING for f in findings):
        return Status.WARN
    return Status.PASS


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one ``check`` run produced."""

    results: tuple[CheckResult, ...]
    """One result per selected check, in run order."""
    environment: dict[str, str] = field(default_factory=dict)
    """python, executable, platform of the inspected interpreter."""
    created: str = ""
    """ISO-8601 time the report was made."""
    tool_version: str = ""
    """autoglm-doctor's version."""
    pack: str = ""
    """Name of the check pack that was applied (``a + b`` for merged packs)."""
    packs: tuple[str, ...] = ()
    """Every pack applied, in the order given."""
    config: str = ""
    """The config file actually read (empty: none)."""
    target: str = ""
    """How the inspected interpreter was chosen (``--python``, ``$VIRTUAL_ENV``...); for people, not JSON."""
    role_evidence: tuple[str, ...] = ()
    """Why these packs: the evidence found on the machine (empty when --pack chose them)."""
    role_chosen_by: str = ""
    """``evidence`` (the doctor decided) or ``--pack`` (the user did); empty in reports made before roles."""
    not_applicable: tuple[tuple[str, str, str], ...] = ()
    """(id, title, why) of the selected checks left out because they are not part of this role."""

    def counts(self) -> dict[str, int]:
        """How many results have each status."""
        counts = {s.value: 0 for s in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    def tested_nothing(self) -> bool:
        """Every result is a skip: the run looked at nothing."""
        return bool(self.results) and all(r.status is Status.SKIP for r in self.results)

    def status(self, *, strict: bool = False) -> Status:
        """Overall verdict: fail if anything failed or errored, else warn, else pass.

        Under ``strict`` a run whose every check was skipped fails too: it tested nothing.
        """
        statuses = {r.status for r in self.results}
        if Status.FAIL in statuses or Status.ERROR in statuses:
            return Status.FAIL
        if strict and self.tested_nothing():
            return Status.FAIL
        if Status.WARN in statuses:
            return Status.FAIL if strict else Status.WARN
        return Status.PASS

    def to_dict(self, *, strict: bool = False) -> dict[str, Any]:
        """The report in the JSON contract's shape (docs/output-formats.md, report.schema.json)."""
        overall = self.status(strict=strict)
        return {
            "schema": "autoglm-doctor/report@1",
            "tool_version": self.tool_version,
            "created": self.created,
            "status": overall.value,
            "counts": self.counts(),
            "packs": list(self.packs or ((self.pack,) if self.pack else ())),
            "config": self.config or None,
            **(
                {
                    "role": {
                        "packs": list(self.packs or ((self.pack,) if self.pack else ())),
                        "chosen_by": self.role_chosen_by,
                        "evidence": list(self.role_evidence),
                    },
                    "not_applicable": [{"id": i, "title": t, "reason": r} for i, t, r in self.not_applicable],
                }
                if self.role_chosen_by
                else {}
            ),
            "environment": dict(self.environment),
            "results": [r.to_dict() for r in self.results],
        }
