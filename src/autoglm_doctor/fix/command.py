"""What ``check --fix`` does once the report is rendered: plan, write, optionally verify.

Kept apart from ``cli.py`` so the command line only passes options in and prints what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from autoglm_doctor.model import Report
from autoglm_doctor.packs import Pack
from autoglm_doctor.probe.snapshot import Snapshot

from .errors import FixError
from .plan import make_plan
from .render import FixFormat, render
from .verify import VERIFY_TIMEOUT_S, verify
from .writer import refuse_existing, write_atomically

DEFAULT_OUTPUT = Path("requirements-autoglm.txt")
"""Where ``--fix`` writes without ``--fix-output``: the working directory."""


@dataclass(frozen=True, slots=True)
class FixOptions:
    """The ``--fix`` family of options."""

    output: Path = DEFAULT_OUTPUT
    """``--fix-output``."""
    format: FixFormat = FixFormat.REQUIREMENTS
    """``--fix-format``."""
    force: bool = False
    """``--force``: replace an existing file."""
    verify: bool = False
    """``--verify``: run pip's resolver on the file."""
    device: str | None = None
    """``--device``, which decides CPU or CUDA wheels like the config's device does."""
    verify_timeout: float = VERIFY_TIMEOUT_S
    """Seconds pip may take."""


def precheck(options: FixOptions) -> None:
    """Fail before any work when the output file exists and ``--force`` was not given."""
    refuse_existing(options.output, force=options.force)


def run_fix(
    report: Report,
    snap: Snapshot,
    pack: Pack,
    options: FixOptions,
    say: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
) -> int:
    """Write the file (and verify it); 0 when it was written (and resolves), 1 otherwise. ``say`` prints to stderr."""
    from autoglm_doctor.redact import redact_report

    try:
        # Finding messages reach the file's "not resolved" list: they are redacted like every report.
        plan = make_plan(redact_report(report), snap, pack, device=options.device)
        text = render(
            plan,
            options.format,
            output_name=str(options.output),
            created=report.created,
            tool_version=report.tool_version,
        )
        write_atomically(options.output, text, force=options.force)
    except FixError as exc:
        say(f"--fix: {exc}")
        return 1
    changed = [line for line in plan.lines if line.action != "keep"]
    say(
        f"--fix: wrote {options.output} ({len(plan.lines)} requirements, {len(changed)} changed or added"
        + (f"; resolves {', '.join(plan.resolved)}" if plan.resolved else "")
        + (f"; {len(plan.unresolved)} finding(s) need a hand fix, listed at its end" if plan.unresolved else "")
        + "). Nothing was installed."
    )
    if not options.verify:
        return 0
    extra: list[str] = []
    if options.format is FixFormat.CONSTRAINTS and plan.index_url:
        extra = ["--extra-index-url", plan.index_url]
    outcome = verify(options.output, snap.python.executable, extra_args=extra, timeout=options.verify_timeout, env=env)
    say(f"--verify: {outcome.summary}")
    if outcome.detail:
        say(outcome.detail)
    return 0 if outcome.ok else 1
