"""CLI conventions: -V, completion, --only/--skip categories that accumulate, explain for ids, codes, categories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.explain import docs_dir, finding_docs

REPO = Path(__file__).resolve().parents[1]


def _ids(report: dict[str, Any]) -> list[str]:
    return [r["id"] for r in report["results"]]


def test_short_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-V"]) == 0
    assert capsys.readouterr().out.startswith("autoglm-doctor ")


def test_shell_completion_is_enabled() -> None:
    script = REPO / ".venv" / "bin" / "autoglm-doctor"
    exe = [str(script)] if script.exists() else [sys.executable, "-m", "autoglm_doctor"]
    shown = subprocess.run([*exe, "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "complete" in shown.stdout
    env = {
        **os.environ,
        "_AUTOGLM_DOCTOR_COMPLETE": "complete_bash",
        "COMP_WORDS": "autoglm-doctor ex",
        "COMP_CWORD": "1",
    }
    completed = subprocess.run(exe, capture_output=True, text=True, timeout=60, env=env)
    assert "explain" in completed.stdout


def test_only_takes_a_category_and_accumulates(workdir: Path, run_json: Any) -> None:
    _code, report = run_json("--only", "python", "--only", "packages.required,packages.versions")
    assert _ids(report) == ["python.version", "python.venv", "packages.required", "packages.versions"]


def test_skip_takes_a_category_and_accumulates(workdir: Path, run_json: Any) -> None:
    _code, report = run_json("--only", "python,packages", "--skip", "packages", "--skip", "python.venv")
    assert _ids(report) == ["python.version"]


def test_unknown_selection_suggests(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--no-smoke", "--only", "pyton"]) == 2
    assert "did you mean python" in capsys.readouterr().err


def test_explain_a_finding_code_printed_by_reports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "config.env-unset"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("config.env-unset (error), found by config.env")
    assert "export MODEL_WEIGHT_PATH" in out


def test_explain_a_category_and_a_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "python"]) == 0
    assert "python.version" in capsys.readouterr().out
    assert main(["explain", "config.env"]) == 0
    assert "config.env-unset" in capsys.readouterr().out


def test_explain_json_and_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "config.env-unset", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "finding" and data["check"] == "config.env" and data["severity"] == "error"
    assert main(["explain", "packages.requred"]) == 2
    assert "did you mean packages.required" in capsys.readouterr().err


def test_every_documented_page_has_its_finding_table() -> None:
    codes = finding_docs()
    pages = {p.name.removesuffix(".md") for p in docs_dir().glob("*.md")}
    assert len(codes) > 100
    assert {d.check for d in codes.values()} <= pages


def test_exit_code_3_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    assert "`3` the doctor itself crashed" in readme
