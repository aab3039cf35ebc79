"""``autoglm-doctor check``: the run itself, from the options the typer command read.

:mod:`autoglm_doctor.cli` declares the options (help, metavars, bounds) and builds a
:class:`CheckArgs`; :func:`run` gathers the facts, runs the checks, writes the report and the
--fix file, and returns the exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from autoglm_doctor import __version__
from autoglm_doctor.exits import EXIT_FAIL, EXIT_OK, UsageError
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.output import color_wanted, stderr_is_terminal, width, write_output
from autoglm_doctor.report import Format

if TYPE_CHECKING:
    from autoglm_doctor.fix.command import FixOptions
    from autoglm_doctor.runner import Progress


@dataclass(frozen=True, slots=True)
class CheckArgs:
    """Every option of ``check``, read; the defaults are the command's."""

    config: Path | None = None
    model: str | None = None
    python: str | None = None
    pack: str | None = None
    """Comma-separated pack names or files (``--pack`` repeated)."""
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
    index_url: str | None = None
    extra_index_url: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False


SMOKE_TIMEOUT_MIN = 1.0
ENDPOINT_CONCURRENCY_MIN = 0


def run(args: CheckArgs) -> int:
    """Run every selected check, write the report (and the --fix file); the exit code."""
    fix_options = _fix_options(args)
    if isinstance(fix_options, int):
        return fix_options
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.probe.collect import gather

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
        packs=chosen_pack.names or (chosen_pack.name,),
        config=snap.config.path if snap.config is not None and snap.config.exists else "",
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
        flags = (
            ("--fix-output", args.fix_output is not None),
            ("--force", args.force),
            ("--verify", args.verify),
            ("--index-url", args.index_url is not None),
            ("--extra-index-url", bool(args.extra_index_url)),
            ("--find-links", bool(args.find_links)),
            ("--no-index", args.no_index),
        )
        given = [flag for flag, on in flags if on]
        if args.fix_format is not FixFormat.REQUIREMENTS:
            given.append("--fix-format")
        if given:
            raise UsageError(f"{', '.join(given)} only work(s) with --fix")
        return None
    from autoglm_doctor.fix.command import FixOptions, default_output, precheck
    from autoglm_doctor.fix.errors import FixError
    from autoglm_doctor.fix.resolve import IndexOptions

    options = FixOptions(
        output=args.fix_output or default_output(args.fix_format),
        format=args.fix_format,
        force=args.force,
        verify=args.verify,
        device=args.device,
        index=IndexOptions(
            index_url=args.index_url,
            extra_index_urls=args.extra_index_url,
            find_links=args.find_links,
            no_index=args.no_index,
        ),
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
