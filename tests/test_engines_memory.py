"""Issue 20: the memory verdict quotes the engine that is launched, from its module, not vLLM for every engine.

Real: the server venvs (vLLM's and SGLang's dist-info and pins), AutoGLM-Phone-9B's folder (real safetensors
headers, sparse data), the launch files. Faked: only NVML (a T4 fixture: 15 GiB, too small for 9B in 16 bits).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import engines
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import result
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_phone, server_venv
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]

LAUNCH = {
    "vllm": "vllm serve {model} --max-model-len 8192 --gpu-memory-utilization 0.9\n",
    "sglang": "python3 -m sglang.launch_server --model-path {model} --context-length 8192 --mem-fraction-static 0.9\n",
}
VERSION = {"vllm": "0.12.0", "sglang": "0.5.6.post1"}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_no_room_for_the_kv_cache_is_said_in_the_launched_engines_words(
    engine: str, workdir: Path, run_json: RunJson, venv: Venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("t4")))
    server_venv(venv, engine=engine, version=VERSION[engine])
    model = build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")
    launch = workdir / "serve.sh"
    launch.write_text("#!/bin/sh\n" + LAUNCH[engine].format(model=model))
    code, report = run_json(
        "--python", str(venv.python), "--config", str(launch), "--pack", "open-autoglm-server", "--only", "cuda.memory"
    )
    assert code == 1
    found = [f for f in result(report, "cuda.memory")["findings"] if f["code"] == "cuda.memory-weights"]
    assert len(found) == 1, result(report, "cuda.memory")["findings"]
    message = found[0]["message"]
    own = engines.get(engine).model.no_room
    others = [e.model.no_room for name, e in engines.ENGINES.items() if name != engine]
    assert own and f"start-up fails ('{own}')" in message
    assert not any(words in message for words in others), message
    if engine == "sglang":  # activations live outside --mem-fraction-static: only the weights fill it
        assert "the profiling peak (0.00 GiB)" in message and "--mem-fraction-static 0.9" in message
