"""smoke.load-infer on a vision-language model: the tiny LLaVA, through the CLI, in a subprocess on the CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from tests.conftest import result
from tests.helpers.tiny_vlm import make_tiny_vlm


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-llava")


def smoke(model: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    args = ["--model", str(model), "--only", "smoke.load-infer", "--smoke-timeout", "300"]
    code = main(["check", "--format", "json", *args])
    return code, result(json.loads(capsys.readouterr().out), "smoke.load-infer")


def test_vlm_smoke_passes_and_the_pixels_reach_the_model(
    tiny_vlm: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, res = smoke(tiny_vlm, capsys)
    assert (code, res["status"]) == (0, "pass"), res
    measured = next(f for f in res["findings"] if f["code"] == "smoke.measured")
    assert "screenshot pixel values [1, 3, 28, 28] reached the model" in measured["message"]


def test_vlm_smoke_fails_without_its_processor_files(
    tiny_vlm: Path, tmp_path: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "no-processor"
    shutil.copytree(tiny_vlm, broken)
    for name in ("processor_config.json", "preprocessor_config.json"):
        (broken / name).unlink(missing_ok=True)
    code, res = smoke(broken, capsys)
    assert code == 1
    failed = [f for f in res["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in failed] == ["smoke.processor-missing"], res
    assert "during processor: OSError: Can't load image processor" in failed[0]["message"]  # phase and cause
    assert "preprocessor_config.json" in failed[0]["fix"]
