"""What ``check --fix`` does once the report is rendered: plan, resolve, write, optionally verify.

The plan states the constraints (:mod:`.plan`); a resolver run for the target chooses exact
versions with hashes (:mod:`.resolve`); the file is the lock in the chosen format, or, when no
resolver could choose, the plan's ranges under a header that says it is not a lock.

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
from .plan import FixPlan, make_plan
from .render import FixFormat, render, render_lock
from .resolve import RESOLVE_TIMEOUT_S, IndexOptions, Lock, NotLocked, find_uv, resolve
from .verify import VERIFY_TIMEOUT_S, VerifyResult, verify, verify_pylock
from .writer import refuse_existing, write_atomically

DEFAULT_OUTPUT = Path("requirements-autoglm.txt")
"""Where ``--fix`` writes without ``--fix-output``: the working directory."""

DEFAULT_PYLOCK_OUTPUT = Path("pylock.autoglm.toml")
"""Where ``--fix-format pylock`` writes without ``--fix-output`` (PEP 751 names: ``pylock.NAME.toml``)."""


def default_output(fmt: FixFormat) -> Path:
    """The file ``--fix`` writes when ``--fix-output`` is not given."""
    return DEFAULT_PYLOCK_OUTPUT if fmt is FixFormat.PYLOCK else DEFAULT_OUTPUT


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
    index: IndexOptions = IndexOptions()
    """``--index-url``, ``--extra-index-url``, ``--find-links``, ``--no-index``: where the resolver looks."""
    resolve_timeout: float = RESOLVE_TIMEOUT_S
    """Seconds the resolver may take."""


def precheck(options: FixOptions) -> None:
    """Fail before any work when the output file exists and ``--force`` was not given."""
    refuse_existing(options.output, force=options.force)


def _resolve(plan: FixPlan, python: str, options: FixOptions, env: Mapping[str, str] | None) -> Lock | NotLocked:
    if not Path(python).exists():
        return NotLocked(
            f"the target interpreter {python} is not on this machine (a snapshot from elsewhere): "
            "no resolver can run for it here; run check --fix on that machine for a lock"
        )
    requirements = [line.requirement for line in plan.lines]
    return resolve(
        requirements, python, options.index, torch_index=plan.index_url, timeout=options.resolve_timeout, env=env
    )


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
    from autoglm_doctor.redact import redact_report, redact_url

    index_args = options.index.args()
    try:
        # Finding messages reach the file's "not resolved" list: they are redacted like every report.
        plan = make_plan(redact_report(report), snap, pack, device=options.device)
        outcome = _resolve(plan, snap.python.executable, options, env)
        common = {"output_name": str(options.output), "created": report.created, "tool_version": report.tool_version}
        if isinstance(outcome, Lock):
            if options.format is FixFormat.PYLOCK:
                from .pylock import render_pylock

                text = render_pylock(plan, outcome, index_args=index_args, **common)
            else:
                text = render_lock(plan, outcome, options.format, index_args=index_args, **common)
        else:
            if options.format is FixFormat.PYLOCK:
                raise FixError(
                    f"no pylock.toml written: {outcome.reason}; a pylock.toml names exact files, so it needs a "
                    "resolver. Pass --find-links WHEELHOUSE or --index-url URL, or use --fix-format requirements "
                    "for the ranges" + (f"\n{outcome.detail}" if outcome.detail else "")
                )
            # "--no-index" alone is no way to install the file: the header's command leaves it out.
            usable = [] if options.index.nothing_reachable() else index_args
            text = render(plan, options.format, not_locked=outcome, index_args=usable, **common)
        # Index URLs may carry a password (--index-url https://user:TOKEN@host/simple): never into the file;
        # pip and uv take it from netrc, keyring or the environment at install time.
        write_atomically(options.output, redact_url(text), force=options.force)
    except FixError as exc:
        say(f"--fix: {exc}")
        return 1
    changed = [line for line in plan.lines if line.action != "keep"]
    what = (
        f"a lock of {len(outcome.packages)} distributions, exact versions with hashes chosen by {outcome.resolver}; "
        f"{len(changed)} changed or added"
        if isinstance(outcome, Lock)
        else f"{len(plan.lines)} requirements, {len(changed)} changed or added"
    )
    say(
        f"--fix: wrote {options.output} ({what}"
        + (f"; resolves {', '.join(plan.resolved)}" if plan.resolved else "")
        + (f"; {len(plan.unresolved)} finding(s) need a hand fix, listed at its end" if plan.unresolved else "")
        + (f"; {len(plan.left_out)} not pinned (editable, local or the doctor itself)" if plan.left_out else "")
        + "). Nothing was installed."
    )
    code = 0
    if isinstance(outcome, NotLocked):
        say(
            f"--fix: NOT A LOCK: {outcome.reason}; the file keeps ranges and has no hashes. For a lock, rerun "
            "where an index answers, or pass --index-url URL or --find-links WHEELHOUSE (with --no-index)."
        )
        if outcome.conflict:
            if outcome.detail:
                say(outcome.detail)
            code = 1
    if not options.verify:
        return code
    result = _verify(plan, outcome, options, snap.python.executable, env)
    say(f"--verify: {result.summary}")
    if result.detail:
        say(result.detail)
    return code if result.ok else 1


def _verify(
    plan: FixPlan, outcome: Lock | NotLocked, options: FixOptions, python: str, env: Mapping[str, str] | None
) -> VerifyResult:
    """Resolve the written file exactly as its header says to install it."""
    index_args = options.index.args()
    if options.format is FixFormat.PYLOCK:
        return verify_pylock(
            options.output, python, find_uv(env), extra_args=index_args, timeout=options.verify_timeout, env=env
        )
    extra = list(index_args)
    if options.format is FixFormat.CONSTRAINTS and plan.index_url:
        extra += ["--extra-index-url", plan.index_url]
    return verify(
        options.output,
        python,
        extra_args=extra,
        timeout=options.verify_timeout,
        env=env,
        require_hashes=isinstance(outcome, Lock) and outcome.hashed,
    )
