"""``autoglm-doctor check``: the run itself, from the options the typer command read.

:mod:`autoglm_doctor.cli` declares the options (help, metavars, bounds) and builds a
:class:`CheckArgs`; :func:`run` gathers the facts, runs the checks, writes the report and the
--fix file, and returns the exit code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from autoglm_doctor import __version__
from autoglm_doctor.exits import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Question, UsageError
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.output import check_output_target, color_wanted, stderr_is_terminal, width, write_output
from autoglm_doctor.packs_schema import SERVICE_SECONDS_MAX, SERVICE_TIMEOUT_MIN
from autoglm_doctor.report import Format

if TYPE_CHECKING:
    from autoglm_doctor.background import Background, Ready
    from autoglm_doctor.fix.command import FixOptions
    from autoglm_doctor.packs import Pack
    from autoglm_doctor.probe.collect import TargetMemo
    from autoglm_doctor.probe.snapshot import Snapshot
    from autoglm_doctor.registry import Registry
    from autoglm_doctor.runner import Progress
    from autoglm_doctor.target import Target


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
    discover: bool = True
    """Look for a config when none is named (off when a run lints one request file of several)."""
    endpoint: str | None = None
    endpoint_timeout: float | None = None
    """``--endpoint-timeout``: seconds each served check may take; None: the pack's ``service.timeout``."""
    endpoint_concurrency: int = 0
    verify_hashes: bool = False
    output_format: Format = Format.RICH
    output: Path | None = None
    more_outputs: tuple[tuple[Format, Path | None], ...] = ()
    """Further reports of the same run (``--format`` repeated), each to its file or to stdout."""
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
    no_env: bool = False
    """Unset ${VAR} references are warnings (pre-commit: the deployment's variables are not set there)."""


SMOKE_TIMEOUT_MIN = 1.0
SMOKE_TIMEOUT_MAX = 86_400.0
"""A day: ``--smoke-timeout`` must be a finite number of seconds (``nan`` or ``inf`` would mean none)."""
ENDPOINT_TIMEOUT_MIN = SERVICE_TIMEOUT_MIN
ENDPOINT_TIMEOUT_MAX = SERVICE_SECONDS_MAX
"""--endpoint-timeout accepts what the pack's service.timeout accepts (packs_schema: one range for both)."""
ENDPOINT_CONCURRENCY_MIN = 0
ENDPOINT_CONCURRENCY_MAX = 64
"""More concurrent requests than this is a load test, not a preflight (``10**20`` used to hang)."""


def _check_bounds(args: CheckArgs) -> None:
    """Usage errors for values typer's range checks let through (``nan``) or that no run can honour."""
    if not math.isfinite(args.smoke_timeout) or not SMOKE_TIMEOUT_MIN <= args.smoke_timeout <= SMOKE_TIMEOUT_MAX:
        raise UsageError(
            f"--smoke-timeout must be a number of seconds from {SMOKE_TIMEOUT_MIN:g} to {SMOKE_TIMEOUT_MAX:g} "
            f"(got {args.smoke_timeout!r})"
        )
    if args.endpoint_timeout is not None and (
        not math.isfinite(args.endpoint_timeout)
        or not ENDPOINT_TIMEOUT_MIN <= args.endpoint_timeout <= ENDPOINT_TIMEOUT_MAX
    ):
        raise UsageError(
            f"--endpoint-timeout must be a number of seconds from {ENDPOINT_TIMEOUT_MIN:g} to "
            f"{ENDPOINT_TIMEOUT_MAX:g} (got {args.endpoint_timeout!r})"
        )
    if args.endpoint_concurrency > ENDPOINT_CONCURRENCY_MAX:
        raise UsageError(
            f"--endpoint-concurrency is at most {ENDPOINT_CONCURRENCY_MAX} (got {args.endpoint_concurrency})"
        )


def _read_by_run(args: CheckArgs) -> list[Path | None]:
    """Files this run reads, which --output must never replace."""
    packs = [Path(p.strip()) for p in (args.pack or "").split(",") if p.strip() and Path(p.strip()).is_file()]
    return [args.config, args.request, args.snapshot, *packs]


@dataclass(frozen=True, slots=True)
class Guarded:
    """What ``--output`` and ``--fix-output`` must never replace: files the run reads, folders it inspects."""

    files: tuple[Path | None, ...]
    """The config, the request, the snapshot, the packs, the interpreter (and the config the probe found)."""
    folders: tuple[tuple[str, Path | None], ...]
    """(what, folder): the model folder and the target environment, as given and as the probe found them."""

    def check(self, output: Path | None, flag: str = "--output") -> Path | None:
        """``output`` resolved (links followed); a usage error when it would replace something guarded."""
        return None if output is None else check_output_target(output, self.files, flag, self.folders)


def guarded(args: CheckArgs, target: Target | None, snap: Snapshot | None = None) -> Guarded:
    """What this run reads: known from the options before any work, and from the snapshot once gathered."""
    import shutil

    from autoglm_doctor.target import environment_of

    files: list[Path | None] = list(_read_by_run(args))
    folders: list[tuple[str, Path | None]] = []
    if target is not None:
        # a bare name (`--python python3`) is the interpreter PATH finds, not a file in the working folder
        found = target.python if os.sep in target.python else shutil.which(target.python)
        if found:
            files.append(Path(found))
            folders.append(("the target environment", environment_of(found)))
    if args.model and Path(args.model).expanduser().is_dir():
        folders.append(("the model folder", Path(args.model).expanduser()))
    if snap is not None and target is not None:  # gathered here (a --snapshot file names another machine's paths)
        if snap.python.executable:
            files.append(Path(snap.python.executable))
        if snap.python.prefix and (prefix := environment_of(snap.python.prefix)) is not None:
            folders.append(("the target environment", prefix))
        if snap.model is not None and snap.model.path:
            folders.append(("the model folder", Path(snap.model.path)))
        if snap.model is not None and snap.model.hub_repo_dir:  # its snapshot's files link into blobs/
            folders.append(("the model's Hugging Face cache folder", Path(snap.model.hub_repo_dir)))
        config = snap.config
        if config is not None and config.path:
            files.append(Path(config.cwd or ".", config.path))
    return Guarded(tuple(files), tuple(folders))


def plan_outputs(formats: list[str], outputs: list[Path]) -> list[tuple[Format, Path | None]]:
    """Pair ``--format`` values with ``--output`` files: (format, file or None for stdout), in order.

    A value may hold several formats separated by commas, each ``NAME`` or ``NAME:FILE``. The
    formats without a file take the ``--output`` files in order; what is left goes to stdout,
    which only one report may use. No ``--format`` means the rich report.
    """
    names = [f.value for f in Format]
    parsed: list[tuple[Format, Path | None]] = []
    for value in formats:
        for item in value.split(","):
            name, colon, file = item.strip().partition(":")
            if name not in names:
                choices = ", ".join(repr(n) for n in names)
                raise UsageError(f"Invalid value for '--format': {name!r} is not one of {choices}.")
            if colon and not file:
                raise UsageError(f"--format {item.strip()!r}: the file after ':' is empty")
            parsed.append((Format(name), Path(file) if colon else None))
    if not parsed:
        parsed = [(Format.RICH, None)]
    files = list(outputs)
    planned: list[tuple[Format, Path | None]] = []
    for fmt, inline in parsed:
        planned.append((fmt, files.pop(0) if inline is None and files else inline))
    if files:
        raise UsageError(
            f"{len(files)} --output more than the formats without a file ({', '.join(map(str, files))}); "
            "give one --format per --output"
        )
    to_stdout = [fmt.value for fmt, file in planned if file is None]
    if len(to_stdout) > 1:
        raise UsageError(
            f"only one report can go to stdout, not {' and '.join(to_stdout)}: give the others a file "
            "(--format NAME:FILE or --output FILE)"
        )
    written = [file for _fmt, file in planned if file is not None]
    if len({str(f) for f in written}) < len(written):
        raise UsageError("two reports would be written to the same file")
    return planned


@dataclass
class RunMemo:
    """What a run over several files (pre-commit's list) works out once: the target's facts, the pack, the checks.

    Each file is still its own report; only what cannot differ between them is shared, so that the
    run stays linear in the number of files (10,000 files: see benchmarks/bench_precommit.py).
    """

    target: TargetMemo = dataclasses.field(default_factory=lambda: _target_memo())
    """The probed target and its GPU facts."""
    pack: Pack | None = None
    """The loaded pack."""
    loaded: Registry | None = None
    """The loaded checks (built-ins and plugins)."""
    json_reports: list[str] | None = None
    """Each file's JSON report, kept for one array on stdout (None: each run prints its own)."""


def _target_memo() -> TargetMemo:
    from autoglm_doctor.probe.collect import TargetMemo

    return TargetMemo()


def run(args: CheckArgs, memo: RunMemo | None = None) -> int:
    """Run every selected check, write the report (and the --fix file); the exit code.

    ``memo``, for a run over several files, carries what the first file's run worked out to the next.
    """
    _check_bounds(args)
    from autoglm_doctor.target import choose

    target = choose(args.python) if args.snapshot is None else None
    files_out = [path for _fmt, path in [(args.output_format, args.output), *args.more_outputs] if path is not None]
    # refused before any work: what the options alone show the run reads (only when something is written)
    before = guarded(args, target) if files_out or args.fix else None
    for written in files_out:
        assert before is not None
        before.check(written)
    fix_options = _fix_options(args, before)
    if isinstance(fix_options, int):
        return fix_options
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.probe.collect import gather

    gathering: Background | Ready | None = None
    launch_found = launch_in_working_directory(args)
    if launch_found is not None:
        args = dataclasses.replace(args, config=launch_found)
    if target is not None:
        # Facts are gathered in the background while the pack and the checks load: start it
        # before importing them, so that the probe's interpreter starts as early as it can.
        from autoglm_doctor.background import Background, Ready

        wanted = GatherOptions(
            python=target.python,
            config=args.config,
            model=args.model,
            verify_hashes=args.verify_hashes,
            discover=args.discover,
        )
        if memo is not None and memo.target.known:  # no probe to wait for: the file's own facts, at once
            gathering = Ready(gather(wanted, memo.target))
        else:
            gathering = Background(gather, wanted, memo.target if memo is not None else None)
    from autoglm_doctor import packs, registry, roles, runner
    from autoglm_doctor.context import CheckContext, Options
    from autoglm_doctor.model import CheckResult, Report
    from autoglm_doctor.probe.snapshot import Snapshot, SnapshotError
    from autoglm_doctor.report import RenderOptions, render

    try:
        chosen_pack = None  # without --pack, the role found below picks the packs, file by file
        if args.pack is not None:
            chosen_pack = memo.pack if memo is not None and memo.pack is not None else packs.load(args.pack)
        loaded = memo.loaded if memo is not None and memo.loaded is not None else registry.load()
        if memo is not None:
            memo.pack, memo.loaded = chosen_pack, loaded
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
    if chosen_pack is None:
        try:
            role = roles.detect_role(
                snap,
                cwd=Path.cwd(),
                environ=snap.env if args.snapshot is not None else os.environ,
                launch_found=launch_found,
            )
        except roles.NoRoleEvidence as exc:
            raise Question(str(exc)) from exc
        chosen_pack = packs.load(",".join(role.packs))
    else:
        role = roles.Role(packs=chosen_pack.names or (chosen_pack.name,), evidence=(), chosen_by="--pack")
    named = {i for i in runner.split_ids(args.only) if i in loaded.checks}  # named in --only: runs whatever the role
    if args.request is not None:  # a check asked for by its input: the in-process role owns it, the user wants it
        named.add("config.request")
    left_out = [s for s in selected if s.id not in named and not roles.applies(s.id, role.packs)]
    selected = [s for s in selected if s not in left_out]

    outputs = [(args.output_format, args.output), *args.more_outputs]
    options = RenderOptions(
        color=color_wanted(sys.stdout.isatty()), width=width(), verbose=args.verbose, strict=args.strict
    )

    def report_of(results: list[CheckResult] | tuple[CheckResult, ...]) -> Report:
        return Report(
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
            target=_target_phrase(target, args.snapshot),
            role_evidence=role.evidence,
            role_chosen_by=role.chosen_by,
            not_applicable=tuple(
                (spec.id, spec.title, roles.not_applicable_reason(spec.id, role.packs)) for spec in left_out
            ),
        )

    stream = None
    if (Format.RICH, None) in outputs:  # the human report goes to stdout: print results as they finish
        from autoglm_doctor.report.stream import StreamedReport

        # The footer moves the cursor: only on a terminal that takes colour (not NO_COLOR, not TERM=dumb).
        live = sys.stdout.isatty() and options.color and os.environ.get("TERM") != "dumb"
        stream = StreamedReport(options, write_output_text, live=live)
        stream.start(report_of([]))
        for failure in loaded.failures:
            stream.result(runner.plugin_failure_result(failure))
    ctx = CheckContext(
        pack=chosen_pack,
        options=Options(
            smoke=args.smoke,
            device=args.device,
            smoke_timeout=args.smoke_timeout,
            allow_remote_code=args.allow_remote_code,
            request=args.request,
            endpoint=args.endpoint,
            endpoint_timeout=args.endpoint_timeout,
            endpoint_concurrency=args.endpoint_concurrency,
            verify_hashes=args.verify_hashes,
            python=target.python if target is not None else args.python,
            from_snapshot=args.snapshot is not None,
            doctor_tool_venv=target.doctor_tool_venv if target is not None else "",
            progress=stream.detail if stream is not None and stream.live else None,
            no_env=args.no_env,
            request_lint=args.request is not None and args.config is None and not args.discover,
        ),
    )
    finished: list[CheckResult] = []

    def on_progress(event: Progress) -> None:
        if event.result is not None:
            finished.append(event.result)
        if stream is not None:
            stream.progress(event)
        elif line_progress is not None:
            line_progress(event)

    line_progress = _progress_printer() if stderr_is_terminal() and not args.verbose else None
    try:
        results = runner.run(loaded, selected, snap, ctx, progress=on_progress)
    except KeyboardInterrupt:
        partial = report_of([*(runner.plugin_failure_result(f) for f in loaded.failures), *finished])
        if stream is not None:
            stream.interrupted(partial)
        else:  # the report was going to a file or another format: say on stderr what had finished
            from autoglm_doctor.report import rich_report
            from autoglm_doctor.report.stream import interrupted_lines, shown

            partial = shown(partial)

            plain = dataclasses.replace(options, color=False)
            lines = rich_report.header_lines(partial)
            previous = None
            for result in partial.results:
                lines += rich_report.result_lines(result, plain, previous)
                previous = result.category
            lines += interrupted_lines(partial, len(selected), plain)
            sys.stderr.write(rich_report.to_text(lines, plain))
        raise
    report = report_of(results)
    if stream is not None:
        stream.finish(report)
    status = report.status(strict=args.strict).value
    # the snapshot adds what the probe found: the config it read, the real model folder and environment
    after = guarded(args, target, snap) if files_out else Guarded((), ())
    for fmt, path in outputs:
        if fmt is Format.RICH and path is None:
            continue  # streamed above
        color = fmt is Format.RICH and path is None and options.color
        rendered = render(report, fmt, dataclasses.replace(options, color=color))
        if fmt is Format.JSON and path is None and memo is not None and memo.json_reports is not None:
            memo.json_reports.append(rendered)  # one JSON document for the whole run: the caller prints the array
            continue
        write_output(rendered, path, after.files, after.folders)
        if path is not None and fmt is not Format.RICH and stderr_is_terminal():
            print(f"report written to {path}: {status}", file=sys.stderr)
    fix_code = EXIT_OK
    if fix_options is not None:
        from autoglm_doctor.fix.command import run_fix
        from autoglm_doctor.textsafe import escape_control

        fix_code = run_fix(
            report, snap, chosen_pack, fix_options, lambda line: print(escape_control(line), file=sys.stderr)
        )
    if args.exit_zero:
        return fix_code
    return EXIT_FAIL if status == "fail" else fix_code


def _fix_options(args: CheckArgs, guard: Guarded | None = None) -> FixOptions | int | None:
    """The --fix options, checked before any work: an existing output file without --force exits 2 at once."""
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
    # like --output: never a device, FIFO or folder, nor a file this run reads or a folder it inspects (usage error)
    guard = guard or guarded(args, None)
    dataclasses.replace(guard, files=(*guard.files, args.output)).check(options.output, "--fix-output")
    try:
        precheck(options)
    except FixError as exc:  # a refusal to replace a file is a usage error (exit 2), not a failed check
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return options


def launch_in_working_directory(args: CheckArgs) -> Path | None:
    """A vLLM/SGLang launch script in the working directory, read as the config when nothing else names one.

    Only without --pack, --config, --snapshot, AUTOGLM_CONFIG and ./autoglm.yaml: it is evidence of the
    server role (roles.py), and the server's checks read its flags. ``snapshot`` asks the same, so that
    a snapshot holds the launch command ``check`` would have read.
    """
    if args.pack is not None or args.config is not None or args.snapshot is not None:
        return None
    from autoglm_doctor.configfile.facts import discover
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.roles import launch_file_in

    if discover(GatherOptions()) is not None:
        return None
    found = launch_file_in(Path.cwd())
    return Path(found.name) if found is not None else None


def write_output_text(text: str) -> None:
    """Print streamed report text on stdout."""
    write_output(text, None)


def _target_phrase(target: Target | None, snapshot: Path | None) -> str:
    """The header's ``target:`` line: how the inspected interpreter was chosen."""
    if target is None:
        return f"from the snapshot {snapshot}"
    if target.how == "--python":
        return f"--python {target.python}"
    return f"{target.python} ({target.how}; --python picks another)"


def _progress_printer() -> Callable[[Progress], None]:
    """Live one-line progress on stderr (only used when stderr is a terminal)."""

    def show(event: Progress) -> None:
        if event.result is None:
            sys.stderr.write(f"\r\033[2K[{event.index}/{event.total}] {event.spec.id} …")
        elif event.index == event.total:
            sys.stderr.write("\r\033[2K")
        sys.stderr.flush()

    return show
