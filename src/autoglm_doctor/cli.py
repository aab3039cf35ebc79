"""The command line: the only place that prints to the terminal and decides the exit code.

Exit codes (DESIGN.md): 0 nothing failed · 1 a check failed or errored · 2 usage error ·
130 interrupted. An unexpected crash of the doctor itself exits 3 with a short message.
"""

from __future__ import annotations

import enum
import gc
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from autoglm_doctor import __version__
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.report import Format

# Importing typer and click allocates tens of thousands of objects: the cyclic collector's passes
# over them cost ~12 ms per run and free nothing, so it pauses for these imports only.
_collecting = gc.isenabled()
gc.disable()
try:
    import typer

    try:  # typer >= 0.2x vendors its own click; older typer uses the click package
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as click_exceptions  # type: ignore[no-redef]
finally:
    if _collecting:
        gc.enable()

if TYPE_CHECKING:
    from autoglm_doctor.fix.command import FixOptions
    from autoglm_doctor.runner import Progress

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

app = typer.Typer(
    name="autoglm-doctor",
    help="Preflight doctor for Open-AutoGLM deployments: tells you why the model will not load, and what to change.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class ListFormat(str, enum.Enum):
    """Formats of ``list``."""

    RICH = "rich"
    JSON = "json"


def _usage(message: str) -> Exception:
    return click_exceptions.UsageError(message)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _color_wanted(stream_is_tty: bool) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream_is_tty


def _width() -> int:
    try:
        return max(60, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        pass
    if sys.stdout.isatty():  # fit the terminal, so the status column stays on screen
        import shutil

        return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    return 100


def _write_output(text: str, output: Path | None) -> None:
    if output is None:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a stdout that cannot say ✓ (cp1252, ascii): degrade, never crash
            encoding = sys.stdout.encoding or "ascii"
            sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
        sys.stdout.flush()
        return
    from autoglm_doctor.fix.errors import FixError
    from autoglm_doctor.fix.writer import write_atomically

    try:  # reports and snapshots replace their file, as any output does (only --fix refuses to)
        write_atomically(output, text, force=True)
    except FixError as exc:
        raise _usage(str(exc)) from exc


@app.command()
def check(
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Deployment config (YAML or JSON).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="PATH|HUB_ID", help="Model folder or hub id.")] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python", metavar="INTERPRETER", help="Interpreter (or venv folder) to inspect; default: this one."
        ),
    ] = None,
    pack: Annotated[
        str | None, typer.Option("--pack", metavar="NAME|FILE", help="Check pack: a built-in name or a YAML file.")
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", metavar="IDS", help="Run only these check ids or globs (comma-separated).")
    ] = None,
    skip: Annotated[
        str | None, typer.Option("--skip", metavar="IDS", help="Skip these check ids or globs (comma-separated).")
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="Run the load-and-infer smoke test.")] = True,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", metavar="SPEC", help="Device for the smoke test (cpu, cuda:0, auto); overrides the config."
        ),
    ] = None,
    smoke_timeout: Annotated[
        float, typer.Option("--smoke-timeout", metavar="S", help="Seconds the smoke test may take.", min=1)
    ] = 600.0,
    allow_remote_code: Annotated[
        bool, typer.Option("--allow-remote-code", help="Let the smoke test run model code from the model folder.")
    ] = False,
    request: Annotated[
        Path | None, typer.Option("--request", metavar="FILE", help="Sample batch request (JSON) to lint.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", metavar="URL", help="Served OpenAI-compatible endpoint URL.")
    ] = None,
    endpoint_concurrency: Annotated[
        int,
        typer.Option(
            "--endpoint-concurrency", metavar="N", help="Send N concurrent requests to the endpoint (0: off).", min=0
        ),
    ] = 0,
    verify_hashes: Annotated[
        bool, typer.Option("--verify-hashes", help="Hash every weight file against the HF cache or a manifest.")
    ] = False,
    output_format: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.RICH,
    output: Annotated[
        Path | None, typer.Option("--output", metavar="FILE", help="Write the report to this file.")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the run too.")] = False,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Always exit 0 (report-only runs).")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Durations, info findings, tracebacks.")] = False,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", metavar="FILE", help="Evaluate a saved snapshot instead of probing this machine."),
    ] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write a pinned requirements file that resolves the packages/torch findings.")
    ] = False,
    fix_output: Annotated[
        Path | None,
        typer.Option("--fix-output", metavar="FILE", help="Where --fix writes (default: ./requirements-autoglm.txt)."),
    ] = None,
    fix_format: Annotated[
        FixFormat, typer.Option("--fix-format", help="Write a requirements (-r) or a constraints (-c) file.")
    ] = FixFormat.REQUIREMENTS,
    force: Annotated[bool, typer.Option("--force", help="Let --fix replace an existing file.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Run pip's resolver (dry run) on the --fix file for the target.")
    ] = False,
) -> int:
    """Run every check and report each problem with its fix."""
    fix_options = _fix_options(fix, fix_output, fix_format, force, verify, device)
    from autoglm_doctor.probe.collect import GatherOptions, gather

    gathering = None
    if snapshot is None:
        # Facts are gathered in the background while the pack and the checks load: start it
        # before importing them, so that the probe's interpreter starts as early as it can.
        from autoglm_doctor import entry

        wanted = GatherOptions(python=python, config=config, model=model, verify_hashes=verify_hashes)
        gathering = entry.take_early(wanted) or entry.Background(gather, wanted)
    from autoglm_doctor import packs, registry, runner
    from autoglm_doctor.context import CheckContext, Options
    from autoglm_doctor.model import Report
    from autoglm_doctor.probe.snapshot import Snapshot, SnapshotError
    from autoglm_doctor.report import RenderOptions, render

    try:
        chosen_pack = packs.load(pack)
        loaded = registry.load()
        selected = runner.select(loaded.checks, only, skip)
    except (packs.PackError, runner.SelectionError) as exc:
        if gathering is not None:
            gathering.result()  # let the probe finish rather than leave it running
        raise _usage(str(exc)) from exc
    if not smoke:
        selected = [spec for spec in selected if not spec.id.startswith("smoke.")]
    if gathering is not None:
        snap = gathering.result()
    else:
        assert snapshot is not None
        try:
            snap = Snapshot.load(snapshot)
        except SnapshotError as exc:
            raise _usage(str(exc)) from exc

    ctx = CheckContext(
        pack=chosen_pack,
        options=Options(
            smoke=smoke,
            device=device,
            smoke_timeout=smoke_timeout,
            allow_remote_code=allow_remote_code,
            request=request,
            endpoint=endpoint,
            endpoint_concurrency=endpoint_concurrency,
            verify_hashes=verify_hashes,
            python=python,
            from_snapshot=snapshot is not None,
        ),
    )
    progress = _progress_printer() if _stderr_is_terminal() and not verbose else None
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
    writes_terminal = output is None and sys.stdout.isatty()
    text = render(
        report,
        output_format,
        RenderOptions(
            color=output_format is Format.RICH and _color_wanted(writes_terminal),
            width=_width(),
            verbose=verbose,
            strict=strict,
        ),
    )
    _write_output(text, output)
    if output is not None and output_format is not Format.RICH and _stderr_is_terminal():
        typer.echo(f"report written to {output}: {report.status(strict=strict).value}", err=True)
    fix_code = EXIT_OK
    if fix_options is not None:
        from autoglm_doctor.fix.command import run_fix

        fix_code = run_fix(report, snap, chosen_pack, fix_options, lambda line: typer.echo(line, err=True))
    if exit_zero:
        return fix_code
    return EXIT_FAIL if report.status(strict=strict).value == "fail" else fix_code


def _fix_options(
    fix: bool, output: Path | None, fmt: FixFormat, force: bool, verify: bool, device: str | None
) -> FixOptions | None:
    """The --fix options, checked before any work: an existing output file without --force exits 1 at once."""
    if not fix:
        flags = (("--fix-output", output is not None), ("--force", force), ("--verify", verify))
        given = [flag for flag, on in flags if on]
        if fmt is not FixFormat.REQUIREMENTS:
            given.append("--fix-format")
        if given:
            raise _usage(f"{', '.join(given)} only work(s) with --fix")
        return None
    from autoglm_doctor.fix.command import DEFAULT_OUTPUT, FixOptions, precheck
    from autoglm_doctor.fix.errors import FixError

    options = FixOptions(output=output or DEFAULT_OUTPUT, format=fmt, force=force, verify=verify, device=device)
    try:
        precheck(options)
    except FixError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAIL) from exc
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


@app.command("list")
def list_checks(
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.RICH,
) -> int:
    """List every check (built-in and plugins) with its id and title."""
    from autoglm_doctor import registry

    loaded = registry.load()
    if output_format is ListFormat.JSON:
        data = {
            "checks": [registry.describe(spec) for spec in loaded.checks.values()],
            "plugin_failures": [f.message for f in loaded.failures],
        }
        typer.echo(json.dumps(data, indent=2))
        return EXIT_OK
    width = max(len(i) for i in loaded.checks)
    for spec in loaded.checks.values():
        origin = "" if spec.origin == "autoglm-doctor" else f"  [{spec.origin}]"
        typer.echo(f"{spec.id:<{width}}  {spec.title}{origin}")
    for failure in loaded.failures:
        typer.echo(f"error: {failure.message}", err=True)
    return EXIT_OK


@app.command()
def explain(
    check_id: Annotated[str, typer.Argument(metavar="CHECK_ID", help="A check id, e.g. packages.required.")],
) -> int:
    """Say what a check decides, why it matters and how to fix what it finds."""
    from autoglm_doctor import registry

    loaded = registry.load()
    spec = loaded.checks.get(check_id)
    if spec is None:
        raise _usage(f"unknown check id {check_id!r} (see `autoglm-doctor list`)")
    lines = [
        f"{spec.id}: {spec.title}",
        "",
        f"Decides:  {spec.decides or '(not documented)'}",
        f"Why:      {spec.why or '(not documented)'}",
        f"Fix:      {spec.fix or '(not documented)'}",
    ]
    if spec.needs:
        lines.append(f"Needs:    {', '.join(spec.needs)} (skipped without)")
    if spec.origin != "autoglm-doctor":
        lines.append(f"From:     {spec.origin}")
    typer.echo("\n".join(lines))
    return EXIT_OK


@app.command("snapshot")
def snapshot_command(
    python: Annotated[
        str | None, typer.Option("--python", metavar="INTERPRETER", help="Interpreter (or venv folder) to inspect.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Deployment config (YAML or JSON).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="PATH|HUB_ID", help="Model folder or hub id.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write the snapshot here (default: stdout).")
    ] = None,
) -> int:
    """Gather every fact once and save it as JSON, to evaluate later with `check --snapshot`."""
    from autoglm_doctor.probe.collect import GatherOptions, gather

    snap = gather(GatherOptions(python=python, config=config, model=model))
    for problem in snap.probe_errors:
        typer.echo(f"error: {problem}", err=True)
    _write_output(snap.to_json() + "\n", output)
    return EXIT_FAIL if not snap.python.version else EXIT_OK


@app.command("fleet")
def fleet_command(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILES", help="Snapshots or JSON reports, one per node (a folder: its *.json)."),
    ],
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.RICH,
) -> int:
    """Compare many nodes' snapshots or reports and name the nodes that drift.

    Shows, per attribute (driver, CUDA, GPU count, torch, transformers, check status...), the
    majority value and only the nodes that deviate; identical configurations are grouped.
    Exit 0: every node agrees and none fails. Exit 1: drift, a failing node or an unreadable
    file. Exit 2: no file could be read at all.
    """
    from autoglm_doctor import fleet

    result = fleet.analyse(files)
    if not result.nodes:
        for problem in result.problems:
            typer.echo(f"error: {problem.file}: {problem.error}", err=True)
        raise _usage("no snapshot or report could be read (make them with `autoglm-doctor snapshot -o NODE.json`)")
    if output_format is ListFormat.JSON:
        _write_output(fleet.render_json(result), None)
    else:
        _write_output(fleet.render_text(result, width=_width()), None)
    return result.exit_code()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.", is_eager=True)] = False,
) -> None:
    if version:
        typer.echo(f"autoglm-doctor {__version__}")
        raise typer.Exit(EXIT_OK)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every outcome to an exit code.

    ``argv=None`` means "run as the program" (the console script, ``python -m``): the process
    ends when this returns.
    """
    # A run is short and makes next to no cyclic garbage, while the collector's passes over the
    # freshly imported modules cost tens of ms: pause it for the run (the caller's setting comes
    # back afterwards). As the program, also freeze what is loaded, so that the interpreter's
    # final full collection at exit does not walk every module, class and function once more.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        if collecting:
            gc.enable()
        if argv is None:
            gc.freeze()


def _main(argv: list[str] | None) -> int:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="autoglm-doctor", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_exceptions.ClickException as exc:
        exc.show()
        return EXIT_USAGE if isinstance(exc, click_exceptions.UsageError) else EXIT_FAIL
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the doctor itself crashed: say so plainly
        import traceback

        typer.echo(f"autoglm-doctor crashed: {type(exc).__name__}: {exc}", err=True)
        if os.environ.get("AUTOGLM_DOCTOR_DEBUG"):
            traceback.print_exc()
        else:
            typer.echo("set AUTOGLM_DOCTOR_DEBUG=1 for the traceback, and please report it", err=True)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else EXIT_OK
