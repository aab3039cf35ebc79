"""Shared fixtures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from tests.helpers.venvs import Venv, healthy, make_venv


@pytest.fixture
def venv(tmp_path: Path) -> Venv:
    """An empty real venv."""
    return make_venv(tmp_path / "venv")


@pytest.fixture
def healthy_venv(tmp_path: Path) -> Venv:
    """A real venv holding a consistent deployment stack."""
    return healthy(make_venv(tmp_path / "venv"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory the doctor runs from."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    for name in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH", "CUDA_VISIBLE_DEVICES", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def run_json(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, dict[str, Any]]]:
    """Run ``autoglm-doctor check --format json ARGS`` in-process, as the console script does; (exit code, report)."""

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        code = main(["check", "--no-smoke", "--format", "json", *args])
        out = capsys.readouterr().out
        return code, json.loads(out)

    return run


def result(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    """The result of one check in a JSON report."""
    return next(r for r in report["results"] if r["id"] == check_id)


def codes(report: dict[str, Any], check_id: str) -> list[str]:
    """Finding codes of one check."""
    return [f["code"] for f in result(report, check_id)["findings"]]
