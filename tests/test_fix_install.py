"""Acceptance: the file `check --fix` writes for each broken environment of the packages tests,
installed into a fresh venv from a local wheelhouse, gives an environment where every packages.*
check passes. Offline: `--no-index --find-links WHEELHOUSE` overrides the file's index line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.gpu import fixture
from tests.helpers.venvs import Venv, healthy, make_venv
from tests.helpers.wheels import build_wheelhouse, pip_install

PACKAGES_CHECKS = ("packages.required", "packages.versions", "packages.conflicts", "packages.shadowing")


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without the NVIDIA driver, also on a GPU machine (the wheelhouse holds CPU builds)."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("no-driver")))


def _missing_fastapi(venv: Venv) -> None:
    for folder in venv.site_packages.glob("fastapi*"):
        shutil.rmtree(folder)


def _old_transformers(venv: Venv) -> None:
    for folder in venv.site_packages.glob("transformers*"):
        shutil.rmtree(folder)
    venv.add("transformers", "4.29.2", ["tokenizers<0.14,>=0.11.1", "numpy>=1.17"])
    for folder in venv.site_packages.glob("tokenizers*"):
        shutil.rmtree(folder)
    venv.add("tokenizers", "0.13.3")


def _tokenizers_outside_pin(venv: Venv) -> None:
    for folder in venv.site_packages.glob("tokenizers*"):
        shutil.rmtree(folder)
    venv.add("tokenizers", "0.19.1", ["huggingface_hub>=0.16.4,<1.0"])


def _numpy2_with_torch21(venv: Venv) -> None:
    for folder in venv.site_packages.glob("numpy*"):
        shutil.rmtree(folder)
    venv.add("numpy", "2.0.1")


def _torch113(venv: Venv) -> None:
    for folder in venv.site_packages.glob("torch*"):
        shutil.rmtree(folder)
    venv.add_torch("1.13.1")


def _duplicate_numpy(venv: Venv) -> None:
    stale = venv.site_packages / "numpy-1.24.0.dist-info"
    stale.mkdir()
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.24.0\n", encoding="utf-8")


BROKEN: dict[str, tuple[Callable[[Venv], None], str]] = {
    "missing-required": (_missing_fastapi, "packages.missing"),
    "too-old-transformers": (_old_transformers, "packages.out-of-range"),
    "tokenizers-outside-pin": (_tokenizers_outside_pin, "packages.dependency-conflict"),
    "numpy2-torch21": (_numpy2_with_torch21, "packages.known-bad.numpy2-old-torch"),
    "torch113-python311": (_torch113, "python.torch-unsupported"),
    "duplicate": (_duplicate_numpy, "packages.duplicate"),
}


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["check", "--no-smoke", "--format", "json", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_fix_file_installs_into_a_passing_environment(
    case: str,
    tmp_path: Path,
    workdir: Path,
    wheelhouse: Path,
    no_gpu: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    breaks, code_expected = BROKEN[case]
    broken = healthy(make_venv(tmp_path / "broken"))
    breaks(broken)
    fix_file = workdir / "requirements-autoglm.txt"

    code, report, err = _check(capsys, "--python", str(broken.python), "--fix")
    assert code == 1, "the broken environment fails (the report's exit code is not changed by --fix)"
    found = [f["code"] for r in report["results"] for f in r["findings"]]
    assert code_expected in found
    assert f"--fix: wrote {fix_file.name}" in err
    text = fix_file.read_text(encoding="utf-8")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text  # no GPU: the CPU index
    assert code_expected in text  # the changed line (or the header) names the finding it resolves

    fresh = make_venv(tmp_path / "fresh")
    installed = pip_install(fresh.python, wheelhouse, "-r", str(fix_file))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Looking in indexes" not in installed.stdout  # --no-index overrides the file's --extra-index-url

    code, report, _ = _check(capsys, "--python", str(fresh.python), "--only", "packages.*")
    statuses = {check_id: result(report, check_id)["status"] for check_id in PACKAGES_CHECKS}
    problems = {r["id"]: r["findings"] for r in report["results"] if r["status"] != "pass"}
    assert statuses == dict.fromkeys(PACKAGES_CHECKS, "pass"), problems
    assert code == 0
