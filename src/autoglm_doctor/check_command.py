"""``autoglm-doctor check``: its options, a fast reader of plain command lines, and the run itself.

The typer app in :mod:`autoglm_doctor.cli` defines every command, its help and its errors.
Importing typer and its click, though, costs ~85 ms, a quarter of a whole ``check`` run. So the
console script (:mod:`autoglm_doctor.entry`) first offers the arguments to :func:`parse_plain`,
which reads a *valid* ``check`` command line without any framework. Anything else (help, an
unknown or malformed option, a value out of range, another command) returns None and goes to
typer, which answers exactly as it always does. ``tests/test_entry.py`` proves that both
read every option to the same :class:`CheckArgs`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoglm_doctor import __version__
from autoglm_doctor.exits import EXIT_FAIL, EXIT_OK, UsageError
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.output import color_wanted, stderr_is_terminal, width, write_output
from autoglm_doctor.records import record
from autoglm_doctor.report import Format

if TYPE_CHECKING:
    from autoglm_doctor.fix.command import FixOptions
    from autoglm_doctor.runner import Progress


@record
class CheckArgs:
    """Every option of ``check``, read; the defaults are the command's."""

    config: Path | None = None
    model: str | None = None
    python: str | None = None
    pack: str | None = None
    only: str | None = None
    skip: str | None = None
    smoke: bool = True
    device: str | None = None
    smoke_timeout: float = 600.0
    allow_remote_code: bool = False
    request: Path | None = None
    endpoint: str | None = None
    endpoint_concurrency: int = 0
    verify_hashes: bool = False
    output_format: Format = Format.RICH
    output: Path | None = None
    strict: bool = False
    exit_zero: bool = False
    verbose: bool = False
    snapshot: Path | None = None
    fix: bool = False
    fix_output: Path | None = None
    fix_format: FixFormat = FixFormat.REQUIREMENTS
    force: bool = False
    verify: bool = False


SMOKE_TIMEOUT_MIN = 1.0
ENDPOINT_CONCURRENCY_MIN = 0


def _at_least(convert: Callable[[str], Any], minimum: float) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = convert(text)
        if value < minimum:
            raise ValueError(text)
        return value

    return checked


VALUE_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--config": ("config", Path),
    "--model": ("model", str),
    "--python": ("python", str),
    "--pack": ("pack", str),
    "--only": ("only", str),
    "--skip": ("skip", str),
    "--device": ("device", str),
    "--smoke-timeout": ("smoke_timeout", _at_least(float, SMOKE_TIMEOUT_MIN)),
    "--request": ("request", Path),
    "--endpoint": ("endpoint", str),
    "--endpoint-concurrency": ("endpoint_concurrency", _at_least(int, ENDPOINT_CONCURRENCY_MIN)),
    "--format": ("output_format", Format),
    "--output": ("output", Path),
    "--snapshot": ("snapshot", Path),
    "--fix-output": ("fix_output", Path),
    "--fix-format": ("fix_format", FixFormat),
}
"""Options that take a value: the field each sets, and how its text becomes the value."""

FLAG_OPTIONS: dict[str, tuple[str, bool]] = {
    "--smoke": ("smoke", True),
    "--no-smoke": ("smoke", False),
    "--allow-remote-code": ("allow_remote_code", True),
    "--verify-hashes": ("verify_hashes", True),
    "--strict": ("strict", True),
    "--exit-zero": ("exit_zero", True),
    "-v": ("verbose", True),
    "--verbose": ("verbose", True),
    "--fix": ("fix", True),
    "--force": ("force", True),
    "--verify": ("verify", True),
}
"""Flags: the field each sets, and to what."""


def parse_plain(argv: list[str]) -> CheckArgs | None:
    """``check ARGS`` read into :class:`CheckArgs`; None unless every argument is plainly valid.

    None is the safe answer: the caller then hands the arguments to typer. So anything this
    reader does not fully understand (a value that starts with ``-``, an empty value, ``--``,
    help) is left to typer rather than guessed at.
    """
    if not argv or argv[0] != "check":
        return None
    values: dict[str, Any] = {}
    rest = iter(argv[1:])
    for arg in rest:
        name, eq, inline = arg.partition("=")
        if name in FLAG_OPTIONS and not eq:
            field, value = FLAG_OPTIONS[name]
            values[field] = value
            continue
        if name not in VALUE_OPTIONS:
            return None
        text = inline if eq else next(rest, None)
        if not text or (not eq and text.startswith("-")):
            return None
        field, convert = VALUE_OPTIONS[name]
        try:
            values[field] = convert(text)
        except ValueError:
            return None
    return CheckArgs(**values)


def run(args: CheckArgs) -> int:
    """Run every selected check, write the report (and the --fix file); the exit code."""
    fix_options = _fix_options(args)
    if isinstance(fix_options, int):
        return fix_options
    from autoglm_doctor.probe.collect import GatherOptions, gather

    gathering = None
    if args.snapshot is None:
        # Facts are gathered in the background while the pack and the checks load: start it
        # before importing them, so that the probe's interpreter starts as early as it can.
        from autoglm_doctor.background import Background

        wanted = GatherOptions(
            python=args.python, config=args.config, model=args.model, verify_hashes=args.verify_hashes
        )
        gathering = Background(gather, wanted)
    from autoglm_doctor import packs, registry, runner
    from autoglm_doctor.context import CheckContext, Options
    from autoglm_doctor.model import Report
    from autoglm_doctor.probe.snapshot import Snapshot, SnapshotError
    from autoglm_doctor.report import RenderOptions, render

    try:
        chosen_pack = packs.load(args.pack)
        loaded = registry.load()
        selected = runner.select(loaded.checks, args.only, args.skip)
    except (packs.PackError, runner.SelectionError) as exc:
        if gathering is not None:
            gathering.result()  # let the probe finish rather than leave it running
        raise UsageError(str(exc)) from exc
    if not args.smoke:
        selected = [spec for spec in selected if not spec.id.startswith("smoke.")]
    if gathering is not None:
        snap = gathering.result()
    else:
        assert args.snapshot is not None
        try:
            snap = Snapshot.load(args.snapshot)
        except SnapshotError as exc:
            raise UsageError(str(exc)) from exc

    ctx = CheckContext(
        pack=chosen_pack,
        options=Options(
            smoke=args.smoke,
            device=args.device,
            smoke_timeout=args.smoke_timeout,
            allow_remote_code=args.allow_remote_code,
            request=args.request,
            endpoint=args.endpoint,
            endpoint_concurrency=args.endpoint_concurrency,
            verify_hashes=args.verify_hashes,
            python=args.python,
            from_snapshot=args.snapshot is not None,
        ),
    )
    progress = _progress_printer() if stderr_is_terminal() and not args.verbose else None
    results = runner.run(loaded, selected, snap, ctx, progress=progress)
    report = Report(
        results=tuple(results),
        environment={
            "python": snap.python.version or "unknown",
            "executable": snap.python.executable,
            "platform": snap.python.platform_full or snap.python.platform,
        },
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        pack=chosen_pack.name,
    )
    writes_terminal = args.output is None and sys.stdout.isatty()
    text = render(
        report,
        args.output_format,
        RenderOptions(
            color=args.output_format is Format.RICH and color_wanted(writes_terminal),
            width=width(),
            verbose=args.verbose,
            strict=args.strict,
        ),
    )
    write_output(text, args.output)
    status = report.status(strict=args.strict).value
    if args.output is not None and args.output_format is not Format.RICH and stderr_is_terminal():
        print(f"report written to {args.output}: {status}", file=sys.stderr)
    fix_code = EXIT_OK
    if fix_options is not None:
        from autoglm_doctor.fix.command import run_fix

        fix_code = run_fix(report, snap, chosen_pack, fix_options, lambda line: print(line, file=sys.stderr))
    if args.exit_zero:
        return fix_code
    return EXIT_FAIL if status == "fail" else fix_code


def _fix_options(args: CheckArgs) -> FixOptions | int | None:
    """The --fix options, checked before any work: an existing output file without --force exits 1 at once."""
    if not args.fix:
        flags = (("--fix-output", args.fix_output is not None), ("--force", args.force), ("--verify", args.verify))
        given = [flag for flag, on in flags if on]
        if args.fix_format is not FixFormat.REQUIREMENTS:
            given.append("--fix-format")
        if given:
            raise UsageError(f"{', '.join(given)} only work(s) with --fix")
        return None
    from autoglm_doctor.fix.command import DEFAULT_OUTPUT, FixOptions, precheck
    from autoglm_doctor.fix.errors import FixError

    options = FixOptions(
        output=args.fix_output or DEFAULT_OUTPUT,
        format=args.fix_format,
        force=args.force,
        verify=args.verify,
        device=args.device,
    )
    try:
        precheck(options)
    except FixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return options


def _progress_printer() -> Callable[[Progress], None]:
    """Live one-line progress on stderr (only used when stderr is a terminal)."""

    def show(event: Progress) -> None:
        if event.result is None:
            sys.stderr.write(f"\r\033[2K[{event.index}/{event.total}] {event.spec.id} …")
        elif event.index == event.total:
            sys.stderr.write("\r\033[2K")
        sys.stderr.flush()

    return show
