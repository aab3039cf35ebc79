"""Issue 20: the memory verdict quotes the engine that is launched, from its module, not vLLM for every engine.

Real: the server venvs (vLLM's and SGLang's dist-info and pins), AutoGLM-Phone-9B's folder (real safetensors
headers, sparse data), the launch files. Faked: only NVML (an A10 fixture: 22.49 GiB, whose 0.85 share holds the
9B weights but no KV cache beside them; a T4: 15 GiB, too small for the weights alone).
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
    "vllm": "vllm serve {model} --max-model-len 8192 --gpu-memory-utilization 0.85\n",
    "sglang": "python3 -m sglang.launch_server --model-path {model} --context-length 8192 --mem-fraction-static 0.85\n",
}
VERSION = {"vllm": "0.12.0", "sglang": "0.5.6.post1"}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_no_room_for_the_kv_cache_is_said_in_the_launched_engines_words(
    engine: str, workdir: Path, run_json: RunJson, venv: Venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("a10-24gb")))
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
        assert "the profiling peak (0.00 GiB)" in message and "--mem-fraction-static 0.85" in message
    # a T4 cannot hold the weights at all: loading fails before the engine sizes its cache, so neither
    # engine's no-room words are quoted, and no length or share is offered (QA P2.12)
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("t4")))
    code, report = run_json(
        "--python", str(venv.python), "--config", str(launch), "--pack", "open-autoglm-server", "--only", "cuda.memory"
    )
    (weights,) = [f for f in result(report, "cuda.memory")["findings"] if f["code"] == "cuda.memory-weights"]
    assert "the weights alone (19.17 GiB at bfloat16) exceed" in weights["message"]
    assert not any(e.model.no_room and e.model.no_room in weights["message"] for e in engines.ENGINES.values())
    assert engines.get(engine).flag("max-model-len") not in weights["fix"]
