"""A hub id resolves in the HF cache as transformers resolves it offline, and the smoke test loads by that id.

transformers itself (installed in the test environment) is the reference: for each cache
layout, ``AutoConfig.from_pretrained(ID)`` with ``HF_HUB_OFFLINE=1`` either loads or fails,
and ``autoglm-doctor check --model ID`` must agree (weights.path passes or fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from tests.conftest import result
from tests.helpers.model_folders import build_hf_cache, build_model

HUB_ID = "zai-org/AutoGLM-Phone-9B"
MAKE_TINY = Path(__file__).resolve().parents[1] / "examples" / "make_tiny_model.py"
REVISION = "b" * 40


def _transformers_loads(cache: Path, hub_id: str, revision: str = "main") -> bool:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    code = f"import transformers; transformers.AutoConfig.from_pretrained({hub_id!r}, revision={revision!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    return proc.returncode == 0


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "hub"
    build_hf_cache(folder, HUB_ID, build_model(tmp_path / "src"), revision=REVISION)
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    return folder


def _weights_path(run_json: Any) -> dict[str, Any]:
    _code, report = run_json("--model", HUB_ID, "--only", "weights.path")
    return result(report, "weights.path")


def _repo(cache: Path) -> Path:
    return cache / ("models--" + HUB_ID.replace("/", "--"))


@pytest.mark.slow
def test_complete_cache_resolves_for_both(cache: Path, workdir: Path, run_json: Any) -> None:
    assert _transformers_loads(cache, HUB_ID)
    path = _weights_path(run_json)
    assert path["status"] == "pass"


@pytest.mark.slow
def test_no_refs_main_fails_for_both(cache: Path, workdir: Path, run_json: Any) -> None:
    (_repo(cache) / "refs" / "main").unlink()
    assert not _transformers_loads(cache, HUB_ID)
    assert _transformers_loads(cache, HUB_ID, revision=REVISION)  # by commit it still loads
    path = _weights_path(run_json)
    assert path["status"] == "fail"
    (finding,) = [f for f in path["findings"] if f["severity"] == "error"]
    assert "no refs/main" in finding["message"] and "bbbbbbbbbbbb" in finding["message"]


@pytest.mark.slow
def test_ref_to_a_missing_snapshot_fails_for_both(cache: Path, workdir: Path, run_json: Any) -> None:
    (_repo(cache) / "refs" / "main").write_text("c" * 40)
    assert not _transformers_loads(cache, HUB_ID)
    path = _weights_path(run_json)
    assert path["status"] == "fail"
    assert any(f"names {'c' * 40}, which has no snapshot" in f["message"] for f in path["findings"])


@pytest.mark.slow
def test_smoke_loads_by_the_hub_id(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real tiny model in the cache: the smoke test loads it by the id, offline, as the service will."""
    tiny = tmp_path / "tiny"
    subprocess.run([sys.executable, str(MAKE_TINY), str(tiny)], check=True, capture_output=True, timeout=300)
    build_hf_cache(tmp_path / "hub", HUB_ID, tiny, revision=REVISION)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    args = ["check", "--model", HUB_ID, "--only", "smoke.load-infer", "--device", "cpu", "--format", "json", "-v"]
    assert main(args) == 0
    smoke = result(json.loads(capsys.readouterr().out), "smoke.load-infer")
    (options,) = [f for f in smoke["findings"] if f["code"] == "smoke.options"]
    assert options["message"].endswith(f"from {HUB_ID}")
