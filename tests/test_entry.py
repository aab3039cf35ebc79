"""The console entry point: typer reads every command line, and the doctor never imports what it inspects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.venvs import Venv


def _doctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The doctor as the console script runs it (``python -m autoglm_doctor``)."""
    return subprocess.run(
        [sys.executable, "-m", "autoglm_doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--no-smoke", "--only", "packages.nope"], "packages.nope"),
        (["check", "--no-smoke", "--snapshot", "missing.json"], "missing.json"),
        (["check", "--no-smoke", "--force"], "--force only work(s) with --fix"),
        (["check", "--no-smoke", "--pack", "no-such-pack"], "no-such-pack"),
        (["check", "--smoke-timeout", "0.5"], "0.5 is not in the range x>=1"),
        (["check", "--format", "xml"], "'xml' is not one of"),
        (["check", "--frmat", "json"], "No such option: --frmat"),
    ],
)
def test_usage_errors_exit_2_with_the_commands_usage_line(args: list[str], message: str, workdir: Path) -> None:
    proc = _doctor(*args, cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(
        "Usage: autoglm-doctor check [OPTIONS] [CONFIG]...\nTry 'autoglm-doctor check --help' for help.\n"
    )
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def _loaded_by_a_check(venv: Venv, workdir: Path, modules: str) -> tuple[list[str], int, dict[str, Any]]:
    """The modules whose names fully match ``modules`` (a regex) after one ``check --no-smoke`` in a fresh interpreter.

    Returns them with the exit code and the JSON report.
    """
    code = (
        "import re, sys; from autoglm_doctor.cli import main\n"
        f"code = main(['check', '--no-smoke', '--format', 'json', '--python', {str(venv.python)!r}])\n"
        f"loaded = sorted(m for m in sys.modules if re.fullmatch({modules!r}, m))\n"
        "print('LOADED', loaded, code, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=workdir, check=False
    )
    assert "LOADED " in proc.stderr, proc.stderr
    loaded, exit_code = proc.stderr.rsplit("LOADED ", 1)[1].rsplit(" ", 1)
    return ast.literal_eval(loaded), int(exit_code), json.loads(proc.stdout)


def test_a_check_loads_neither_torch_nor_transformers(healthy_venv: Venv, workdir: Path) -> None:
    loaded, code, report = _loaded_by_a_check(healthy_venv, workdir, r"(torch|transformers)(\..*)?")
    assert (loaded, code) == ([], 0)
    assert report["counts"]["fail"] == 0


def test_a_check_without_an_endpoint_loads_no_phone_module(healthy_venv: Venv, workdir: Path) -> None:
    """The client's exchange, prompt, screenshot and reply judge are loaded by the checks that talk to an endpoint."""
    loaded, code, report = _loaded_by_a_check(healthy_venv, workdir, r"autoglm_doctor\.phone\..+")
    assert (loaded, code) == ([], 0)
    assert {r["id"]: r["status"] for r in report["results"]}["service.endpoint"] == "skip"


def test_console_script_reports_the_interpreter_it_was_asked_about(healthy_venv: Venv, workdir: Path) -> None:
    proc = _doctor("check", "--no-smoke", "--format", "json", "--python", str(healthy_venv.python), cwd=workdir)
    report = json.loads(proc.stdout)
    assert report["environment"]["executable"].startswith(str(healthy_venv.root))
    assert proc.returncode == 0, proc.stderr


def test_version_and_help_through_the_console_script(workdir: Path) -> None:
    version = _doctor("--version", cwd=workdir)
    assert version.returncode == 0
    assert version.stdout.startswith("autoglm-doctor ")
    helped = _doctor("check", "--help", cwd=workdir)
    assert helped.returncode == 0
    assert "--python INTERPRETER" in helped.stdout
