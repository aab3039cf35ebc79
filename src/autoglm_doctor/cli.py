"""The command line (typer): every command, its help, its usage errors, and the exit code.

This is the console script's entry point and the only place that exits (codes in
:mod:`autoglm_doctor.exits`). ``check`` reads its options here and runs
:func:`autoglm_doctor.check_command.run`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from autoglm_doctor import __version__, check_command
from autoglm_doctor.check_command import (
    ENDPOINT_CONCURRENCY_MIN,
    ENDPOINT_TIMEOUT_MAX,
    ENDPOINT_TIMEOUT_MIN,
    SMOKE_TIMEOUT_MIN,
    CheckArgs,
)
from autoglm_doctor.exits import (
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Question,
    UsageError,
)
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.output import OutputUnwritable, width, write_output
from autoglm_doctor.report import Format

try:  # typer >= 0.2x vendors its own click; older typer uses the click package
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(
    name=PROG,
    help="Preflight doctor for Open-AutoGLM deployments: tells you why the model will not load, and what to change.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class ListFormat(str, enum.Enum):
    """Formats of ``list``."""

    RICH = "rich"
    JSON = "json"


def _usage(message: str) -> Exception:
    return click_exceptions.UsageError(message)


@contextlib.contextmanager
def _click_usage() -> Iterator[None]:
    """Our usage errors, raised as click's inside a command, so that click prints its usage line."""
    try:
        yield
    except Question:
        raise  # asked plainly by main(), not as a malformed command line
    except UsageError as exc:
        raise _usage(str(exc)) from exc


@app.command()
def check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[CONFIG]...",
            help="More config files to lint, one report each (what pre-commit passes); with --config too.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Deployment config (YAML or JSON).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="PATH|HUB_ID", help="Model folder or hub id.")] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="INTERPRETER",
            help="Interpreter (or venv folder) to inspect; default: $VIRTUAL_ENV, $CONDA_PREFIX, else python on PATH.",
        ),
    ] = None,
    pack: Annotated[
        list[str] | None,
        typer.Option(
            "--pack",
            metavar="NAME|FILE",
            help="Check pack: a built-in name or a YAML file; repeat it (or separate with commas) to merge packs.",
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="IDS",
            help="Run only these check ids, globs or categories (comma-separated; repeat to add more).",
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip", metavar="IDS", help="Skip these check ids, globs or categories (comma-separated; repeatable)."
        ),
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="Run the load-and-infer smoke test.")] = True,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", metavar="SPEC", help="Device for the smoke test (cpu, cuda:0, auto); overrides the config."
        ),
    ] = None,
    smoke_timeout: Annotated[
        float,
        typer.Option("--smoke-timeout", metavar="S", help="Seconds the smoke test may take.", min=SMOKE_TIMEOUT_MIN),
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
    endpoint_timeout: Annotated[
        float | None,
        typer.Option(
            "--endpoint-timeout",
            metavar="S",
            help="Seconds each served check may take in all, "
            f"{ENDPOINT_TIMEOUT_MIN:g} to {ENDPOINT_TIMEOUT_MAX:g} as the pack's service.timeout (default: the pack's "
            "service.timeout, 12 s); a server that does not answer costs this once for the whole run.",
        ),
    ] = None,
    endpoint_concurrency: Annotated[
        int,
        typer.Option(
            "--endpoint-concurrency",
            metavar="N",
            help="Send N concurrent requests to the endpoint (0: off).",
            min=ENDPOINT_CONCURRENCY_MIN,
        ),
    ] = 0,
    verify_hashes: Annotated[
        bool, typer.Option("--verify-hashes", help="Hash every weight file against the HF cache or a manifest.")
    ] = False,
    output_format: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            metavar="FORMAT[:FILE]",
            help=(
                "Report format: rich, json, junit, markdown, github or sarif. Repeat it (or separate with commas) "
                "for several reports from one run; FORMAT:FILE writes that one to FILE."
            ),
            autocompletion=lambda: [f.value for f in Format],
        ),
    ] = None,
    output: Annotated[
        list[Path] | None,
        typer.Option("--output", metavar="FILE", help="Write the report to this file (one per --format, in order)."),
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
        FixFormat,
        typer.Option(
            "--fix-format", help="Write a requirements (-r), a constraints (-c) or a PEP 751 pylock.toml file."
        ),
    ] = FixFormat.REQUIREMENTS,
    force: Annotated[bool, typer.Option("--force", help="Let --fix replace an existing file.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Run pip's resolver (dry run) on the --fix file for the target.")
    ] = False,
    index_url: Annotated[
        str | None,
        typer.Option(
            "--index-url", metavar="URL", help="--fix resolves from this index (default: target's pip config)."
        ),
    ] = None,
    extra_index_url: Annotated[
        list[str] | None,
        typer.Option("--extra-index-url", metavar="URL", help="--fix also resolves from this index (repeatable)."),
    ] = None,
    find_links: Annotated[
        list[str] | None,
        typer.Option("--find-links", metavar="PATH|URL", help="--fix also looks for archives here (repeatable)."),
    ] = None,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="--fix resolves from --find-links only, no index.")
    ] = False,
    no_env: Annotated[
        bool,
        typer.Option(
            "--no-env", help="Unset ${VAR} references are warnings, not errors (commit-time linting, as pre-commit)."
        ),
    ] = False,
) -> int:
    """Run every check and report each problem with its fix."""
    with _click_usage():
        outputs = check_command.plan_outputs(output_format or [], output or [])
    (first_format, first_output), *more_outputs = outputs
    args = CheckArgs(
        config=config,
        model=model,
        python=python,
        pack=",".join(pack) if pack else None,
        only=",".join(only) if only else None,
        skip=",".join(skip) if skip else None,
        smoke=smoke,
        device=device,
        smoke_timeout=smoke_timeout,
        allow_remote_code=allow_remote_code,
        request=request,
        endpoint=endpoint,
        endpoint_timeout=endpoint_timeout,
        endpoint_concurrency=endpoint_concurrency,
        verify_hashes=verify_hashes,
        output_format=first_format,
        output=first_output,
        more_outputs=tuple(more_outputs),
        strict=strict,
        exit_zero=exit_zero,
        verbose=verbose,
        snapshot=snapshot,
        fix=fix,
        fix_output=fix_output,
        fix_format=fix_format,
        force=force,
        verify=verify,
        index_url=index_url,
        extra_index_url=tuple(extra_index_url or ()),
        find_links=tuple(find_links or ()),
        no_index=no_index,
        no_env=no_env,
    )
    configs = [*([config] if config is not None else []), *(files or [])]
    with _click_usage():
        if len(configs) < 2:
            return check_command.run(_one_file(args, configs[0] if configs else None, named=config is not None))
        if any(path is not None for _fmt, path in outputs) or fix:
            raise UsageError("several configs give one report each, on stdout: --output and --fix take one config")
        memo = check_command.RunMemo()  # the target probed once, the pack and checks loaded once, for every file
        if first_format is Format.JSON:  # stdout carries one JSON document: an array of the files' reports
            memo.json_reports = []
        code = max(check_command.run(_one_file(args, one, named=False), memo) for one in configs)
        if memo.json_reports is not None:
            reports = [json.loads(text) for text in memo.json_reports]
            write_output(json.dumps(reports, indent=2, ensure_ascii=False) + "\n", None)
        return code


def _one_file(args: check_command.CheckArgs, path: Path | None, *, named: bool) -> check_command.CheckArgs:
    """The run for one file given to ``check``, linted as what its content shows it is.

    A request JSON (an array of request items) is linted by config.request, with no config looked
    for; a launch command or the doctor's config is the run's config. ``--config FILE`` is always a config.
    """
    if path is None or named or args.request is not None or not path.is_file():
        return dataclasses.replace(args, config=path)
    from autoglm_doctor.configfile.load import REQUEST, kind_of_file  # only for a file to tell apart

    if kind_of_file(path) == REQUEST:
        return dataclasses.replace(args, config=None, request=path, discover=False)
    return dataclasses.replace(args, config=path)


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
    name: Annotated[
        str,
        typer.Argument(
            metavar="CHECK_ID|FINDING_CODE|CATEGORY",
            help="A check id (packages.required), a finding code from a report (config.env-unset) or a category.",
        ),
    ],
    output_format: Annotated[ListFormat, typer.Option("--format", help="Output format.")] = ListFormat.RICH,
) -> int:
    """Say what a check decides, what a finding means, or which checks a category holds, and how to fix it."""
    from autoglm_doctor import registry
    from autoglm_doctor.explain import UnknownTopic, as_text
    from autoglm_doctor.explain import explain as explain_topic

    try:
        data = explain_topic(name, registry.load())
    except UnknownTopic as exc:
        raise _usage(str(exc)) from exc
    typer.echo(json.dumps(data, indent=2) if output_format is ListFormat.JSON else as_text(data))
    return EXIT_OK


@app.command("snapshot")
def snapshot_command(
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="INTERPRETER",
            help="Interpreter (or venv folder) to inspect; default: $VIRTUAL_ENV, $CONDA_PREFIX, else python on PATH.",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Deployment config (YAML or JSON).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="PATH|HUB_ID", help="Model folder or hub id.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write the snapshot here (default: stdout).")
    ] = None,
) -> int:
    """Gather every fact once and save it as JSON, to evaluate later with `check --snapshot`.

    Without --config it captures the config `check` would read here: $AUTOGLM_CONFIG, ./autoglm.yaml,
    else a vLLM/SGLang launch script in the working directory (serve.sh...).
    """
    from autoglm_doctor.check_command import CheckArgs, guarded, launch_in_working_directory
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.probe.collect import gather
    from autoglm_doctor.target import choose
    from autoglm_doctor.textsafe import escape_control

    # the same target as `check`: --python, else the active environment, else the python on PATH
    target = choose(python)
    args = CheckArgs(config=config, model=model, python=python)
    # the launch script `check` would find here and read as the config: `check --snapshot` re-evaluates it
    config = config or launch_in_working_directory(args)
    args = dataclasses.replace(args, config=config)
    with _click_usage():
        guarded(args, target).check(output)  # never into what it inspects: refused before the probe runs
    snap = gather(GatherOptions(python=target.python, config=config, model=model))
    for problem in snap.probe_errors:
        typer.echo(escape_control(f"error: {problem}"), err=True)
    after = guarded(args, target, snap)
    with _click_usage():
        write_output(snap.to_json() + "\n", output, after.files, after.folders)
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
    from autoglm_doctor.textsafe import escape_control, escape_json_text

    result = fleet.analyse(files)
    if not result.nodes:
        for problem in result.problems:
            typer.echo(escape_control(f"error: {problem.file}: {problem.error}"), err=True)
        raise _usage("no snapshot or report could be read (make them with `autoglm-doctor snapshot -o NODE.json`)")
    if output_format is ListFormat.JSON:
        write_output(escape_json_text(fleet.render_json(result)), None)
    else:
        write_output(escape_control(fleet.render_text(result, width=width())), None)
    return result.exit_code()


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("-V", "--version", help="Show the version and exit.", is_eager=True)] = False,
) -> None:
    if version:
        typer.echo(f"autoglm-doctor {__version__}")
        raise typer.Exit(EXIT_OK)


class _ClosedStdout(io.TextIOBase):
    """What stdout is when the doctor was started with it closed (``>&-``): writing fails clearly."""

    def isatty(self) -> bool:
        return False

    def write(self, _text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")


def _fill_descriptor(fd: int) -> None:
    """Point ``fd`` at /dev/null when it is closed."""
    try:
        os.fstat(fd)
    except OSError:
        with contextlib.suppress(OSError):
            spare = os.open(os.devnull, os.O_RDWR)
            if spare != fd:
                os.dup2(spare, fd)
                os.close(spare)


def _standard_streams() -> None:
    """A closed stdout fails the report's write with a message; a closed stderr swallows messages.

    The closed descriptors 0-2 are pointed at /dev/null first, so that no file the doctor opens
    later gets descriptor 1 and receives what was meant for stdout.
    """
    for fd in (0, 1, 2):
        _fill_descriptor(fd)
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process


def _interrupted() -> int:
    """SIGINT or SIGTERM: kill every child's process group (probe, smoke test, adb...), say so, 130."""
    from autoglm_doctor import procs

    procs.kill_all(final=True)
    _say("interrupted")
    return EXIT_INTERRUPTED


def _say(line: str) -> None:
    """One line on stderr, if there is a stderr to write to."""
    with contextlib.suppress(Exception):
        print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and map every way it can end to an exit code.

    ``argv=None`` means "run as the program" (the console script, ``python -m``): read
    ``sys.argv``. Exit codes: 0 nothing failed · 1 a check failed or errored · 2 usage error ·
    3 the doctor itself crashed (a bug; one line, the traceback with ``AUTOGLM_DOCTOR_DEBUG=1``) ·
    130 interrupted.
    """
    from autoglm_doctor.signals import Interrupted, handle_termination

    _standard_streams()
    try:
        os.getcwd()
    except OSError as exc:  # deleted (or unreadable) working directory: relative paths mean nothing
        _say(f"Error: the working directory is gone ({exc.strerror or exc}); cd to an existing folder and rerun")
        return EXIT_USAGE
    command = typer.main.get_command(app)
    try:
        with handle_termination():
            result = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt, Interrupted):
        return _interrupted()
    except typer.Exit as exc:
        if exc.exit_code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into Exit(130)
            return _interrupted()
        return int(exc.exit_code)
    except click_exceptions.ClickException as exc:
        from autoglm_doctor.textsafe import escape_control

        exc.message = escape_control(exc.message)  # it may quote an inspected file's name
        exc.show()
        return EXIT_USAGE if isinstance(exc, click_exceptions.UsageError) else EXIT_FAIL
    except Question as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:  # raised outside a command's own usage mapping
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except OutputUnwritable as exc:
        _say(f"error: {exc}")
        return EXIT_FAIL
    except Exception as exc:  # noqa: BLE001 - the doctor itself crashed: say so plainly
        print(f"{PROG} crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("AUTOGLM_DOCTOR_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            print("set AUTOGLM_DOCTOR_DEBUG=1 for the traceback, and please report it", file=sys.stderr)
        return EXIT_INTERNAL
    if result == EXIT_INTERRUPTED:  # typer's own Ctrl-C handling returns 130 without standalone mode
        return _interrupted()
    return result if isinstance(result, int) else EXIT_OK
