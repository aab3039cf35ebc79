"""The engines' model registries come with their released files: an installed one is read, an absent one is tabled.

Real parts: venvs holding vLLM 0.12.0 / SGLang 0.5.6.post2 as ``pip install --no-deps`` leaves them,
from the release's own files kept in ``tools/knowledge_sources`` (registry.py, the models folder), the
Open-AutoGLM model folder (real headers), launch files. Nothing is faked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import engines
from tests.conftest import result
from tests.helpers.engines import install_release
from tests.helpers.served import CONFIG, build_autoglm_phone
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]

ABSENT = "GlmOcrForConditionalGeneration"
"""A GLM architecture vLLM 0.12.0 and SGLang 0.5.6.post2 lack (later releases of both list it)."""


def _findings(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in result(report, "weights.architecture")["findings"]}


@pytest.mark.parametrize(
    ("engine", "version", "title", "registry", "count"),
    [
        ("vllm", "0.12.0", "vLLM", "vllm/model_executor/models/registry.py", 254),
        ("sglang", "0.5.6.post2", "SGLang", "sglang/srt/models", 145),
    ],
)
def test_an_engine_installed_from_its_release_files_reads_its_registry(
    venv: Venv,
    workdir: Path,
    run_json: RunJson,
    tmp_path: Path,
    engine: str,
    version: str,
    title: str,
    registry: str,
    count: int,
) -> None:
    install_release(venv, engine, version)
    assert (venv.site_packages / registry).exists()  # the release's own registry, as pip leaves it
    model = build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")
    _, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    found = _findings(report)
    assert not [code for code in found if code.endswith("-registry-unread")], found
    served = found["weights.architecture-served"]
    assert served["message"] == (
        f"{title} {version} serves Glm4vForConditionalGeneration "
        f"(its registry: {venv.site_packages / registry}, {count} architectures)"
    )
    # the table generated from the same files lists the same architectures
    table = engines.load_table(engine, engines.get(engine).table_line(version))
    assert len(table["architectures"]) == count and "Glm4vForConditionalGeneration" in table["architectures"]

    other = build_autoglm_phone(tmp_path / "models" / "ocr", shards=1, config={**CONFIG, "architectures": [ABSENT]})
    code, report = run_json("--python", str(venv.python), "--model", str(other), "--only", "weights.architecture")
    assert code == 1
    unserved = _findings(report)["weights.architecture-unserved"]
    assert unserved["severity"] == "error"
    assert unserved["message"].startswith(
        f"{title} {version} does not serve {ABSENT} (config.json's architectures): it is not in "
        f"{venv.site_packages / registry} ({count} architectures)"
    )
    assert unserved["fix"].endswith(f"-m pip install --upgrade {engine}")


@pytest.mark.parametrize(
    ("launch", "title", "version", "table"),
    [
        ("docker run vllm/vllm-openai:v0.12.0 --model {model}\n", "vLLM", "0.12.0", "vllm-0.12.json"),
        (
            "pip install sglang==0.5.6.post2 && python3 -m sglang.launch_server --model-path {model}\n",
            "SGLang",
            "0.5.6.post2",
            "sglang-0.5.6.post2.json",
        ),
    ],
)
def test_an_engine_the_launch_file_names_is_answered_from_its_table(
    venv: Venv, workdir: Path, run_json: RunJson, tmp_path: Path, launch: str, title: str, version: str, table: str
) -> None:
    """A client machine: the engine runs elsewhere (an image, another host); the launch file names its version."""
    model = build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")
    serve = workdir / "serve.sh"
    serve.write_text(launch.format(model=model))
    args = ("--python", str(venv.python), "--model", str(model), "--config", str(serve))
    _, report = run_json(*args, "--only", "weights.architecture")
    served = _findings(report)["weights.architecture-served"]
    assert served["message"].startswith(
        f"{title} {version}, which the launch file names (not installed here), serves Glm4vForConditionalGeneration: "
        f"knowledge/engines/{table} ({title} {version}'s registry, "
    )
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "architectures": [ABSENT]}))
    code, report = run_json(*args, "--only", "weights.architecture")
    assert code == 1
    unserved = _findings(report)["weights.architecture-unserved"]
    assert f"does not serve {ABSENT}" in unserved["message"] and f"knowledge/engines/{table}" in unserved["message"]
    # a version with no table of its own line (only the nearest older one) is not answered for
    serve.write_text(launch.format(model=model).replace(version, "0.1.0"))
    _, report = run_json(*args, "--only", "weights.architecture")
    assert not [c for c in _findings(report) if c.startswith("weights.architecture-")]
