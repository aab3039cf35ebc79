"""The console entry point's early start of fact gathering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoglm_doctor import entry
from autoglm_doctor.probe.collect import GatherOptions
from tests.helpers.venvs import Venv


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check"], {"python": None, "config": None, "model": None, "verify_hashes": False}),
        (
            ["check", "--python", "/v/bin/python", "--config=d.yaml", "--model", "m", "--verify-hashes"],
            {"python": "/v/bin/python", "config": Path("d.yaml"), "model": "m", "verify_hashes": True},
        ),
        (
            ["check", "--only", "python.*", "--python=/x"],
            {"python": "/x", "config": None, "model": None, "verify_hashes": False},
        ),
    ],
)
def test_plain_check_arguments_are_read(args: list[str], expected: dict[str, object]) -> None:
    assert entry.gather_options_from(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["list"],
        ["check", "--help"],
        ["check", "--snapshot", "s.json"],
        ["check", "--python"],
        ["check", "--config", "--model"],
    ],
)
def test_anything_unusual_means_no_early_start(args: list[str]) -> None:
    assert entry.gather_options_from(args) is None


def test_early_gathering_is_used_only_for_the_same_options(healthy_venv: Venv, workdir: Path) -> None:
    entry.start_early(["check", "--python", str(healthy_venv.python)])
    assert entry.take_early(GatherOptions(python=str(healthy_venv.python))) is not None
    entry.start_early(["check", "--python", str(healthy_venv.python)])
    assert entry.take_early(GatherOptions(python=None)) is None  # stale: waited for and dropped
    assert entry.take_early(GatherOptions(python=str(healthy_venv.python))) is None


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
