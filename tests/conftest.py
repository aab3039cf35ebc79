"""Shared fixtures."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from autoglm_doctor.cli import main
from tests.helpers.venvs import Venv, healthy, make_venv

# Every property test runs with a fixed seed (derandomize): CI and `make test` try the same examples, and a
# failure reproduces. HYPOTHESIS_PROFILE=explore searches at random instead, to look for new cases.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))


@pytest.fixture(autouse=True, scope="session")
def _test_env_is_the_active_env() -> Iterator[None]:
    """Tests run as from the activated test venv: a check without --python inspects it.

    Without ``--python`` the doctor inspects ``$VIRTUAL_ENV`` (else the python first on PATH),
    not its own interpreter; ``make test`` runs ``.venv/bin/python -m pytest`` without activating
    the venv, so the suite says which environment is active, as a shell's ``activate`` would.
    """
    before = os.environ.get("VIRTUAL_ENV")
    os.environ["VIRTUAL_ENV"] = sys.prefix
    os.environ.pop("CONDA_PREFIX", None)
    yield
    if before is None:
        os.environ.pop("VIRTUAL_ENV", None)
    else:
        os.environ["VIRTUAL_ENV"] = before


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
