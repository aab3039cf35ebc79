"""The console entry point: a plain ``check`` runs without typer, and reads exactly as typer reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st

from autoglm_doctor import check_command, cli, entry
from autoglm_doctor.check_command import FLAG_OPTIONS, VALUE_OPTIONS, CheckArgs, parse_plain
from tests.helpers.venvs import Venv


def typer_reads(args: list[str], monkeypatch: pytest.MonkeyPatch) -> CheckArgs | int:
    """What the typer CLI makes of ``args``: the CheckArgs it runs with, or its exit code."""
    seen: list[CheckArgs] = []

    def record_run(parsed: CheckArgs) -> int:
        seen.append(parsed)
        return 0

    with monkeypatch.context() as patch:
        patch.setattr(check_command, "run", record_run)
        code = cli.main(args)
    return seen[0] if seen else code


def test_every_option_of_typers_check_is_known_to_the_fast_reader() -> None:
    group: Any = typer.main.get_command(cli.app)
    declared = {
        name
        for param in group.commands["check"].params
        for name in (*param.opts, *param.secondary_opts)
        if name != "--help"
    }
    assert declared == set(VALUE_OPTIONS) | set(FLAG_OPTIONS)


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "--python", "/v/bin/python", "--config=d.yaml", "--model", "m", "--verify-hashes"],
        ["check", "--only", "python.*", "--skip=packages.*", "--no-smoke", "--smoke", "--no-smoke"],
        ["check", "--format", "json", "--output", "r.json", "--strict", "--exit-zero", "-v"],
        ["check", "--format=junit", "--format", "github", "--verbose"],
        ["check", "--smoke-timeout", "1", "--endpoint-concurrency=0", "--device", "cuda:0", "--allow-remote-code"],
        ["check", "--smoke-timeout=2.5e2", "--endpoint-concurrency", "1_000", "--endpoint", "http://127.0.0.1:1/v1"],
        ["check", "--fix", "--fix-output", "out.txt", "--fix-format", "constraints", "--force", "--verify"],
        ["check", "--snapshot", "node.json", "--pack", "open-autoglm-phone", "--request", "req.json"],
        ["check", "--python", "py3", "--python", "py4"],
    ],
)
def test_plain_command_lines_read_as_typer_reads_them(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = parse_plain(args)
    assert fast is not None
    assert fast == typer_reads(args, monkeypatch)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["list"],
        ["--version"],
        ["check", "--help"],
        ["check", "--python"],
        ["check", "--config", "--model", "m"],
        ["check", "--only="],
        ["check", "--format", "xml"],
        ["check", "--format", "JSON"],
        ["check", "--smoke-timeout", "0.5"],
        ["check", "--smoke-timeout", "soon"],
        ["check", "--endpoint-concurrency", "-1"],
        ["check", "--endpoint-concurrency", "2.0"],
        ["check", "--strict=yes"],
        ["check", "-vv"],
        ["check", "-h"],
        ["check", "--frmat", "json"],
        ["check", "--", "--strict"],
        ["check", "extra"],
    ],
)
def test_anything_else_goes_to_typer(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_plain(args) is None


_VALUES: dict[str, st.SearchStrategy[str]] = {
    "--smoke-timeout": st.sampled_from(["1", "1.0", "30", "0.5", "0", "-3", "1e3", "x", "inf"]),
    "--endpoint-concurrency": st.sampled_from(["0", "1", "8", "-1", "2.5", "1_0", "many"]),
    "--format": st.sampled_from(["rich", "json", "junit", "markdown", "github", "xml", "Json"]),
    "--fix-format": st.sampled_from(["requirements", "constraints", "pip"]),
}
_TEXT = st.sampled_from(["a", "python.*", "/tmp/x.yaml", "-x", "", "cuda:0", "open-autoglm", "a=b"])
_TOKEN = st.one_of(
    st.sampled_from(sorted(FLAG_OPTIONS)).map(lambda flag: [flag]),
    st.sampled_from(sorted(VALUE_OPTIONS)).flatmap(
        lambda name: st.tuples(_VALUES.get(name, _TEXT), st.booleans()).map(
            lambda pair: [f"{name}={pair[0]}"] if pair[1] else [name, pair[0]]
        )
    ),
    st.sampled_from([["--help"], ["--nope"], ["-q"], ["stray"], ["--strict=1"]]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TOKEN, max_size=6).map(lambda parts: ["check", *(token for part in parts for token in part)]))
def test_the_fast_reader_never_accepts_what_typer_refuses_and_agrees_otherwise(args: list[str]) -> None:
    fast = parse_plain(args)
    if fast is None:
        return  # typer decides, as for any command line
    with pytest.MonkeyPatch.context() as patch:
        assert typer_reads(args, patch) == fast


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--no-smoke", "--only", "packages.nope"],
        ["check", "--no-smoke", "--snapshot", "missing.json"],
        ["check", "--no-smoke", "--force"],
        ["check", "--no-smoke", "--pack", "no-such-pack"],
    ],
)
def test_usage_errors_read_the_same_on_both_paths(
    args: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_plain(args) is not None
    fast_code = entry.main(args)
    fast = capsys.readouterr()
    typer_code = cli.main(args)
    slow = capsys.readouterr()
    assert (fast_code, fast.err, fast.out) == (typer_code, slow.err, slow.out)
    assert fast_code == 2
    assert fast.err.startswith("Usage: autoglm-doctor check [OPTIONS]\n")


def test_a_plain_check_loads_neither_cli_framework_nor_torch(healthy_venv: Venv, workdir: Path) -> None:
    code = (
        "import sys; from autoglm_doctor.entry import main\n"
        f"code = main(['check', '--no-smoke', '--format', 'json', '--python', {str(healthy_venv.python)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'torch', 'transformers'))\n"
        "print('LOADED', loaded, code, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=workdir, check=False
    )
    assert "LOADED [] 0" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["counts"]["fail"] == 0


def test_console_script_reports_the_interpreter_it_was_asked_about(healthy_venv: Venv, workdir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoglm_doctor",
            "check",
            "--no-smoke",
            "--format",
            "json",
            "--python",
            str(healthy_venv.python),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workdir,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert report["environment"]["executable"].startswith(str(healthy_venv.root))
    assert proc.returncode == 0, proc.stderr
