"""A distribution installed with ``pip install --no-deps`` is one grouped error, not one error per requirement.

Real parts: a venv whose vLLM dist-info holds vLLM 0.12.0's released METADATA verbatim (68 Requires-Dist lines,
``tools/knowledge_sources/vllm-metadata/``), with only torch and transformers beside it, as
``pip install --no-deps vllm==0.12.0`` into a torch venv leaves it; AutoGLM-Phone-9B's folder and the README's
launch command. Faked: NVML (fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.engines import install_release, no_deps_vllm
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_phone, write_launch
from tests.helpers.venvs import Venv

ROOT = Path(__file__).resolve().parent.parent
RunJson = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def setup(venv: Venv, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Venv, Path]:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("a10-24gb")))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvcc of this machine's in the report
    model = build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")
    return no_deps_vllm(venv), write_launch(workdir, model, port="8011")


def test_no_deps_vllm_is_one_grouped_error_naming_the_reinstall(setup: tuple[Venv, Path], run_json: RunJson) -> None:
    server, launch = setup
    code, report = run_json("--python", str(server.python), "--config", str(launch), "--pack", "open-autoglm-server")
    assert code == 1
    findings = result(report, "packages.conflicts")["findings"]
    grouped = [f for f in findings if f["code"] == "packages.dependencies-missing"]
    assert len(grouped) == 1, [f["code"] for f in findings]
    assert [f for f in findings if f["code"] == "packages.dependency-missing"] == []
    finding = grouped[0]
    assert finding["severity"] == "error"
    assert finding["message"].startswith("vllm 0.12.0 is missing ")
    assert "-m pip install vllm==0.12.0" in finding["fix"]
    assert "--no-deps" not in finding["fix"].split("(")[0]
    # the list is in the JSON report, one line per missing requirement, each naming what vLLM asks for
    details = finding["details"]
    assert len(details) >= 50
    assert "vllm 0.12.0 requires fastapi>=0.115.0, which is not installed" in details
    assert all(line.startswith("vllm 0.12.0 requires ") for line in details)
    assert f"is missing {len(details)} of its " in finding["message"]


def test_first_screen_at_80_columns_shows_the_gpu_and_model_findings(
    setup: tuple[Venv, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, launch = setup
    monkeypatch.setenv("COLUMNS", "80")
    args = ["check", "--no-smoke", "--python", str(server.python), "--config", launch.name]  # run from its folder
    assert main([*args, "--pack", "open-autoglm-server", "--format", "rich"]) == 1
    lines = capsys.readouterr().out.splitlines()
    first = "\n".join(lines[:40])
    # findings wrap at 80 columns (the header's paths and a fix's command stay whole, to be copied)
    assert [line for line in lines[3:40] if len(line) > 80 and "fix:" not in line] == []
    assert "packages.dependencies-missing" not in first  # codes are not printed; the message is
    assert "vllm 0.12.0 is missing" in first
    assert "lines behind this: -v lists them)" in first
    for check_id in ("(cuda.driver)", "(cuda.torch-build)", "(cuda.memory)"):
        assert check_id in first, first
    # the GPU/model verdict itself (the README command on an A10), its bar and its fix, not only its check line
    assert "vllm on GPU 0 (NVIDIA A10): one 25480-token" in first
    assert "GPU 0 (NVIDIA A10): 22.49 GiB" in first  # its bar follows (a host nvcc's warning may push it down)
    # what the model needs from vLLM's missing requirements is not a second error (one failure, one finding)
    assert "Pillow is not installed" not in "\n".join(lines)
    # the requirement list only with -v
    assert "requires fastapi" not in "\n".join(lines)
    assert main([*args, "--pack", "open-autoglm-server", "--format", "rich", "-v"]) == 1
    verbose = capsys.readouterr().out
    assert "- vllm 0.12.0 requires fastapi>=0.115.0, which is not installed" in verbose


def test_markdown_folds_the_list_into_details(setup: tuple[Venv, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """A PR comment or job summary shows the grouped error with its list folded away, every item in it."""
    server, launch = setup
    args = ["check", "--no-smoke", "--python", str(server.python), "--config", str(launch)]
    main([*args, "--pack", "open-autoglm-server", "--only", "packages.conflicts", "--format", "markdown"])
    text = capsys.readouterr().out
    assert "`packages.dependencies-missing`: vllm 0.12.0 is missing" in text
    folded = text.split("<details><summary>", 1)[1].split("</details>", 1)[0]
    count = int(folded.split(" lines</summary>", 1)[0])
    items = [line for line in folded.splitlines() if line.strip().startswith("- vllm 0.12.0 requires ")]
    assert len(items) == count >= 50


def test_without_torch_the_skips_name_the_no_deps_engine_and_the_model_needs_are_not_repeated(
    venv: Venv, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pip install --no-deps vllm`` into an empty venv (QA's report): no torch, no Pillow, nothing vLLM needs."""
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("rtx4090-headless")))
    monkeypatch.setenv("COLUMNS", "80")
    install_release(venv, "vllm", "0.12.0")
    model = build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")
    write_launch(workdir, model)
    args = ["check", "--no-smoke", "--python", str(venv.python)]
    assert main([*args, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    # the engine is installed: the skips say why torch is absent instead of "install the engine"
    for check_id in ("cuda.torch-build", "cuda.toolkit"):
        skipped = result(report, check_id)
        assert skipped["status"] == "skip"
        assert skipped["findings"][0]["message"] == (
            "torch is not installed: vllm 0.12.0 was installed without its requirements"
        )
    # Pillow is among the grouped requirements: reported once, by packages.conflicts
    needs = {f["code"]: f for f in result(report, "weights.architecture")["findings"]}
    for code in ("weights.processor-needs-pillow",):
        assert needs[code]["severity"] == "info", needs[code]
        assert "reported once by packages.conflicts (packages.dependencies-missing)" in needs[code]["message"]
        assert "fix" not in needs[code]
    # alone (packages.conflicts not run), the model's need is still the error it is
    assert main([*args, "--only", "weights.architecture", "--format", "json"]) == 1
    alone = json.loads(capsys.readouterr().out)
    pillow = [f for f in result(alone, "weights.architecture")["findings"] if "Pillow" in f["message"]]
    assert [f["severity"] for f in pillow] == ["error"]
    # the first screen: the grouped error, then the GPU/model verdict with its bar
    assert main([*args, "--format", "rich"]) == 1
    shown = capsys.readouterr().out
    first = "\n".join(shown.splitlines()[:40])
    assert "vllm 0.12.0 is missing 55 of its 55 requirements" in first
    assert "vllm on GPU 0 (NVIDIA GeForce RTX 4090) may not" in first
    assert "█ weights 19.17" in first
    # the skips say it in one line each at 80 columns (cuda.toolkit's comes after the memory verdict)
    assert shown.count("      torch is not installed: vllm 0.12.0 was installed without its requirements\n") == 2
