"""The default target under pipx: the doctor in its own venv (from the built wheel), the deployment in another.

Installed with pipx, the doctor's ``sys.executable`` is pipx's venv, which holds none of the
deployment. Without ``--python`` it must inspect the active environment (``VIRTUAL_ENV``, then
``CONDA_PREFIX``), else the python first on PATH, and say so in the header; a target that is the
doctor's own tool venv is a warning saying how to point it at the deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.venvs import Venv, healthy, install_wheel_offline, make_venv

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [built] = dist.glob("autoglm_doctor-*.whl")
    return built


@pytest.fixture(scope="module")
def tool(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A pipx-style tool venv: ``<home>/pipx/venvs/autoglm-doctor`` with pipx's metadata file."""
    venv = make_venv(tmp_path_factory.mktemp("home") / "pipx" / "venvs" / "autoglm-doctor")
    install_wheel_offline(venv, wheel)
    (venv.root / "pipx_metadata.json").write_text('{"pipx_metadata_version": "0.5"}\n', encoding="utf-8")
    return venv


def _run(tool: Venv, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")}
    return subprocess.run(
        [str(tool.root / "bin" / "autoglm-doctor"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, **env},
        check=False,
    )


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.startswith("{"), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.mark.slow
def test_activated_deployment_venv_is_the_target(tool: Venv, tmp_path: Path) -> None:
    deploy = healthy(make_venv(tmp_path / "deploy"))
    path = f"{deploy.root / 'bin'}{os.pathsep}{tool.root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    env = {"VIRTUAL_ENV": str(deploy.root), "PATH": path}
    report = _json(
        _run(tool, tmp_path, env, "check", "--no-smoke", "--only", "python,packages.required", "--format", "json")
    )
    assert report["environment"]["executable"] == str(deploy.python)
    assert "python.doctor-venv" not in json.dumps(report)
    rich = _run(tool, tmp_path, env, "check", "--no-smoke", "--only", "python")
    assert f"target: {deploy.python} ($VIRTUAL_ENV; --python picks another)" in rich.stdout
    snapshot = json.loads(_run(tool, tmp_path, env, "snapshot").stdout)  # `snapshot` picks the same target
    assert snapshot["python"]["executable"] == str(deploy.python)


@pytest.mark.slow
def test_conda_prefix_then_path_when_no_venv_is_active(tool: Venv, tmp_path: Path) -> None:
    conda = make_venv(tmp_path / "conda-env")
    on_path = make_venv(tmp_path / "on-path")
    path = f"{on_path.root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    report = _json(
        _run(
            tool,
            tmp_path,
            {"CONDA_PREFIX": str(conda.root), "PATH": path},
            "check",
            "--no-smoke",
            "--only",
            "python.version",
            "--format",
            "json",
            "--pack",
            "open-autoglm",  # an empty environment shows no role
        )
    )
    assert report["environment"]["executable"] == str(conda.python)
    rich = _run(
        tool, tmp_path, {"PATH": path}, "check", "--no-smoke", "--only", "python.version", "--pack", "open-autoglm"
    )
    assert f"target: {on_path.python} (the python first on PATH; --python picks another)" in rich.stdout


@pytest.mark.slow
def test_the_doctors_own_pipx_venv_is_a_warning(tool: Venv, tmp_path: Path) -> None:
    env = {"VIRTUAL_ENV": str(tool.root), "PATH": f"{tool.root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = _run(tool, tmp_path, env, "check", "--no-smoke", "--only", "python.venv", "--format", "json")
    venv = next(r for r in _json(proc)["results"] if r["id"] == "python.venv")
    (finding,) = [f for f in venv["findings"] if f["code"] == "python.doctor-venv"]
    assert finding["severity"] == "warning" and str(tool.root) in finding["message"]
    assert finding["fix"].startswith("autoglm-doctor check --python ")
    # --python always wins, and is never warned about
    explicit = _run(
        tool,
        tmp_path,
        env,
        "check",
        "--no-smoke",
        "--only",
        "python.venv",
        "--format",
        "json",
        "--python",
        sys.executable,
    )
    assert "python.doctor-venv" not in explicit.stdout


@pytest.mark.slow
def test_wheel_carries_license_urls_and_the_explain_text(wheel: Path, tool: Venv, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Source, https://" in metadata
    assert "autoglm_doctor/_docs/checks/config.env.md" in names
    proc = _run(tool, tmp_path, {}, "explain", "config.env-unset")
    assert proc.returncode == 0 and "export MODEL_WEIGHT_PATH" in proc.stdout


@pytest.mark.slow
def test_doctor_installed_in_the_deployment_venv_inspects_it_when_run_by_full_path(wheel: Path, tmp_path: Path) -> None:
    # /srv/autoglm/.venv/bin/autoglm-doctor check, from outside any venv, as the README's install line allows
    deploy = healthy(make_venv(tmp_path / "srv" / ".venv"))
    install_wheel_offline(deploy, wheel)
    other = make_venv(tmp_path / "elsewhere")  # the python first on PATH is not the deployment's
    env = {"PATH": f"{other.root / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    report = _json(
        _run(
            deploy,
            tmp_path,
            env,
            "check",
            "--no-smoke",
            "--only",
            "python",
            "--format",
            "json",
            "--pack",
            "open-autoglm",
        )
    )
    assert report["environment"]["executable"] == str(deploy.root / "bin" / "python")
    assert "python.doctor-venv" not in json.dumps(report)


@pytest.mark.slow
def test_python_flag_on_the_doctors_own_tool_venv_warns_too(tool: Venv, tmp_path: Path) -> None:
    proc = _run(
        tool,
        tmp_path,
        {},
        "check",
        "--no-smoke",
        "--only",
        "python.venv",
        "--format",
        "json",
        "--pack",
        "open-autoglm",
        "--python",
        str(tool.root / "bin" / "python"),
    )
    venv = next(r for r in _json(proc)["results"] if r["id"] == "python.venv")
    assert "python.doctor-venv" in [f["code"] for f in venv["findings"]]


@pytest.mark.slow
def test_virtual_env_naming_the_tool_venv_through_a_link_warns(tool: Venv, tmp_path: Path) -> None:
    # ~/.local/pipx is often reached through a link (a home on another disk): the same venv, another path
    link = tmp_path / "pipx-link"
    link.symlink_to(tool.root, target_is_directory=True)
    env = {"VIRTUAL_ENV": str(link)}
    proc = _run(tool, tmp_path, env, "check", "--no-smoke", "--only", "python.venv", "--format", "json")
    venv = next(r for r in _json(proc)["results"] if r["id"] == "python.venv")
    assert "python.doctor-venv" in [f["code"] for f in venv["findings"]]
