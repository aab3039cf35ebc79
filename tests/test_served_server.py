"""The GPU server of the served deployment (pack open-autoglm-server), through the CLI with --format json.

Real parts: venvs with real dist-info, AutoGLM-Phone-9B's model folder (real headers and index,
sparse data), the README's launch file, a real socket bound on loopback. Faked: only NVML (fixtures).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import codes, result
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_in_hf_cache, build_autoglm_phone, server_venv, write_launch
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]
GiB = 1024**3


@pytest.fixture
def gpu_host(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make the doctor see a fixture's GPUs."""

    def use(name: str) -> None:
        monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture(name)))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return use


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """AutoGLM-Phone-9B's folder."""
    return build_autoglm_phone(tmp_path / "models" / "AutoGLM-Phone-9B")


@pytest.fixture
def server(venv: Venv) -> Venv:
    """The server's environment: vllm 0.12.0 and the torch it pins."""
    return server_venv(venv)


@pytest.fixture
def free_port() -> Iterator[int]:
    """A port nothing listens on (checked by binding it once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port


def serve_check(run_json: RunJson, server: Venv, launch: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``check --python SERVER --config LAUNCH --pack open-autoglm-server ARGS --format json``."""
    return run_json("--python", str(server.python), "--config", str(launch), "--pack", "open-autoglm-server", *args)


def finding(report: dict[str, Any], check_id: str, code: str) -> dict[str, Any]:
    found = [f for f in result(report, check_id)["findings"] if f["code"] == code]
    assert found, f"{code} not in {check_id}: {codes(report, check_id)}"
    return found[0]


def everything(report: dict[str, Any]) -> str:
    return json.dumps(report["results"])


# --- the README's launch file, --pack open-autoglm-server ---------------------------------------


def test_readme_launch_on_a10_fails_and_names_the_length_that_fits(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("a10-24gb")
    launch = write_launch(workdir, model, port=str(free_port))
    code, report = serve_check(run_json, server, launch)
    assert code == 1
    # the header names the pack and the launch file actually read
    assert report["packs"] == ["open-autoglm-server"]
    assert report["config"] == str(launch)
    # the model came from the launch file's --model, and weights.* read it
    assert result(report, "weights.files")["status"] == "pass"
    assert result(report, "weights.path")["status"] == "pass"
    # vllm is there: nothing missing; no client package and no adb asked for
    assert result(report, "packages.required")["status"] == "pass"
    judged = everything({"results": [r for r in report["results"] if r["status"] != "skip"]})
    for client_thing in ("openai", "Pillow", "PHONE_AGENT_BASE_URL", "adb"):
        assert client_thing not in judged
    assert "devices.adb" not in [r["id"] for r in report["results"]]  # not the server's: not run, not shown
    (adb,) = [item for item in report["not_applicable"] if item["id"] == "devices.adb"]
    assert adb["reason"] == "not part of the vLLM/SGLang model server"
    memory = finding(report, "cuda.memory", "cuda.memory-max-model-len")
    assert memory["severity"] == "error"
    message = memory["message"]
    # one 25480-token sequence: 40 layers x 2 KV heads x 128 x 2 x 2 B = 40 KiB/token, 1593 blocks of 16
    assert "one 25480-token sequence needs 0.97 GiB of KV cache" in message
    accounting = memory["details"]  # listed under -v; the bar shows the same figures
    assert "weights: 19.17 GiB (bfloat16, --dtype auto -> config.json torch_dtype bfloat16)" in accounting
    assert "budget: 22.49 GiB x 0.90 = 20.24 GiB" in accounting
    largest = int(message.split("the largest --max-model-len that fits is ")[1].split(".")[0])
    assert 0 < largest < 25480 and largest % 16 == 0
    # the fixes are vLLM flags, computed; never transformers options
    assert "--gpu-memory-utilization 0.95" in memory["fix"]
    # one A10 visible: no tensor-parallel size the host cannot run (QA P1.4)
    assert "--tensor-parallel-size" not in memory["fix"]
    for transformers_option in ("torch_dtype", "device_map", "load_in_8bit", "load_in_4bit"):
        assert transformers_option not in memory["fix"]
    assert memory["location"]["file"] == str(launch)
    assert memory["location"]["line"] == 8  # --max-model-len 25480


@pytest.mark.parametrize("gpu", ["a100-40gb", "h100-80gb"])
def test_readme_launch_fits_a100_40gb_and_h100(
    workdir: Path,
    run_json: RunJson,
    gpu_host: Callable[[str], None],
    server: Venv,
    model: Path,
    free_port: int,
    gpu: str,
) -> None:
    gpu_host(gpu)
    launch = write_launch(workdir, model, port=str(free_port))
    code, report = serve_check(run_json, server, launch, "--only", "cuda.*")
    assert result(report, "cuda.memory")["status"] == "pass", codes(report, "cuda.memory")
    fits = finding(report, "cuda.memory", "cuda.memory-fits")
    assert "the KV cache of one 25480-token sequence (0.97 GiB) fits" in fits["message"]
    assert result(report, "cuda.driver")["status"] == "pass"
    assert code == 0, [(r["id"], r["status"]) for r in report["results"]]


def test_hub_id_in_the_launch_file_resolves_in_the_hf_cache(
    workdir: Path,
    run_json: RunJson,
    gpu_host: Callable[[str], None],
    server: Venv,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    free_port: int,
) -> None:
    gpu_host("h100-80gb")
    cache = tmp_path / "hf"
    build_autoglm_in_hf_cache(cache / "hub")
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    launch = write_launch(workdir, "zai-org/AutoGLM-Phone-9B", port=str(free_port))
    code, report = serve_check(run_json, server, launch, "--only", "weights.*,cuda.memory")
    assert result(report, "weights.files")["status"] == "pass", codes(report, "weights.files")
    assert "25480-token sequence" in finding(report, "cuda.memory", "cuda.memory-fits")["message"]
    assert code == 0


def test_a_server_without_vllm_or_sglang_fails(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], venv: Venv, model: Path, free_port: int
) -> None:
    gpu_host("h100-80gb")
    venv.add("transformers", "4.57.1")
    launch = write_launch(workdir, model, port=str(free_port))
    code, report = run_json("--python", str(venv.python), "--config", str(launch), "--pack", "open-autoglm-server")
    assert code == 1
    missing = finding(report, "packages.required", "packages.missing")
    assert "vllm is not installed, but the launch command runs vllm" in missing["message"]
    assert missing["fix"].endswith("'vllm>=0.12.0'")


def test_sglang_launch_accepts_sglang_and_reads_its_flags(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], venv: Venv, model: Path, free_port: int
) -> None:
    gpu_host("h100-80gb")
    server_venv(venv, engine="sglang", version="0.5.6.post1")
    launch = workdir / "sglang.sh"
    launch.write_text(
        f"python3 -m sglang.launch_server --model-path {model} --served-model-name autoglm-phone-9b \\\n"
        f"  --context-length 70000 --tp-size 3 --mem-fraction-static 0.8 --port {free_port}\n"
    )
    code, report = run_json("--python", str(venv.python), "--config", str(launch), "--pack", "open-autoglm-server")
    assert code == 1
    assert result(report, "packages.required")["status"] == "pass"
    assert result(report, "weights.files")["status"] == "pass"
    findings = result(report, "config.values")["findings"]
    by_code = {f["code"]: f for f in findings}
    assert (
        "--context-length 70000 is more than the model's max_position_embeddings (65536"
        in (by_code["config.launch-exceeds-model-length"]["message"])
    )
    tp = [f for f in findings if f["code"] == "config.launch-tensor-parallel"]
    assert any("--tp-size 3 needs 3 GPUs, but 1 is visible" in f["message"] for f in tp)
    assert any(
        "does not divide the model's 32 attention heads" in f["message"] and f["fix"] == "--tp-size 1" for f in tp
    )
    assert "config.launch-image-limit" not in by_code  # SGLang has no --limit-mm-per-prompt
    assert "config.launch-flag-missing" not in by_code


def test_launch_flags_against_model_gpus_and_host(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path
) -> None:
    gpu_host("h100-80gb")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        launch = write_launch(
            workdir,
            model,
            port=str(port),
            max_model_len="131072",
            limit_mm_per_prompt='"{\\"image\\":0}"',
            gpu_memory_utilization="1.5",
            tensor_parallel_size="2",
        )
        code, report = serve_check(run_json, server, launch, "--only", "config.values")
    assert code == 1
    by_code: dict[str, list[dict[str, Any]]] = {}
    for f in result(report, "config.values")["findings"]:
        by_code.setdefault(f["code"], []).append(f)
    assert (
        "--max-model-len 131072 is more than the model's max_position_embeddings (65536"
        in (by_code["config.launch-exceeds-model-length"][0]["message"])
    )
    assert "At most 0 image(s) may be provided in one request." in by_code["config.launch-image-limit"][0]["message"]
    utilization = by_code["config.launch-range"][0]  # vLLM's own Field(gt=0, le=1)
    assert "--gpu-memory-utilization 1.5 is outside what vLLM can run with" in utilization["message"]
    assert "more than 0 and at most 1" in utilization["message"]
    assert (
        "--tensor-parallel-size 2 needs 2 GPUs, but 1 is visible"
        in by_code["config.launch-tensor-parallel"][0]["message"]
    )
    busy = by_code["config.launch-port-in-use"][0]
    assert f"port {port} is already taken on this host" in busy["message"]
    assert busy["location"]["line"] == 14  # --port, after the two flags added above it


def test_served_model_name_missing_is_reported(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("h100-80gb")
    launch = workdir / "serve.sh"
    launch.write_text(f"vllm serve {model} --max-model-len 8192 --port {free_port}\n")
    code, report = serve_check(run_json, server, launch, "--only", "config.values,weights.files")
    assert code == 1
    assert result(report, "weights.files")["status"] == "pass"  # vllm serve's positional model
    missing = finding(report, "config.values", "config.launch-flag-missing")
    assert "--served-model-name" in missing["message"]
    assert "config.launch-image-limit" in codes(report, "config.values")  # an image model without a limit


@pytest.mark.parametrize(("written", "verdict"), [("32k", None), ("1k", "config.launch-flag")])
def test_max_model_len_in_vllms_short_form(
    workdir: Path,
    run_json: RunJson,
    gpu_host: Callable[[str], None],
    server: Venv,
    model: Path,
    free_port: int,
    written: str,
    verdict: str | None,
) -> None:
    """vLLM reads --max-model-len 32k as 32000 tokens: no type error; 1k (1000) is below the pack's 1024."""
    gpu_host("h100-80gb")
    launch = write_launch(workdir, model, port=str(free_port), max_model_len=written)
    _, report = serve_check(run_json, server, launch, "--only", "config.values")
    flagged = [f for f in result(report, "config.values")["findings"] if "--max-model-len" in f["message"]]
    if verdict is None:
        assert flagged == []
    else:
        assert [f["code"] for f in flagged] == [verdict]
        assert flagged[0]["evidence"]["observed"] == f"--max-model-len {written}"


def test_tensor_parallel_halves_the_weights_and_keeps_the_vision_tower_whole(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("a10-24gb")
    # one A10 is visible: TP 2 does not start (config.values), but the accounting per GPU is TP 2's
    launch = write_launch(workdir, model, port=str(free_port), tensor_parallel_size="2")
    _, report = serve_check(run_json, server, launch, "--only", "cuda.memory")
    # the KV cache fits; beyond the budget, NCCL joins the context and the CUDA graphs (0.12 GiB to spare)
    fits = finding(report, "cuda.memory", "cuda.memory-within-error")
    # (19.17 - 1.63 vision) / 2 + 1.63 = 10.40 GiB per GPU; 1 KV head per GPU: 20 KiB/token
    accounting = "\n".join(fits["details"])
    assert "weights: 10.40 GiB" in accounting
    assert "40 layers x 1 KV heads per GPU x 128 x 2 x 2 B = 20 KiB/token" in accounting
    assert "NCCL 0.50 GiB" in accounting


def test_startup_free_memory_below_the_budget_fails(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("rtx4090")  # a desktop: Xorg and another python hold 3.4 GiB
    launch = write_launch(workdir, model, port=str(free_port))
    code, report = serve_check(run_json, server, launch, "--only", "cuda.memory")
    assert code == 1
    startup = finding(report, "cuda.memory", "cuda.memory-startup-free")
    assert (
        "has 20.52 GiB free of 23.99 GiB, less than the 21.59 GiB --gpu-memory-utilization 0.9 reserves"
        in (startup["message"])
    )
    assert "pids 2417, 3301" in startup["fix"]


def test_server_pack_requires_a_gpu(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("no-driver")
    launch = write_launch(workdir, model, port=str(free_port))
    code, report = serve_check(run_json, server, launch, "--only", "cuda.driver")
    assert code == 1
    assert result(report, "cuda.driver")["status"] == "fail"
    assert "open-autoglm-server pack requires an NVIDIA GPU" in everything(report)


def test_a_saved_snapshot_of_the_server_gives_the_same_verdict(
    workdir: Path,
    run_json: RunJson,
    gpu_host: Callable[[str], None],
    server: Venv,
    model: Path,
    free_port: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from autoglm_doctor.cli import main

    gpu_host("a10-24gb")
    launch = write_launch(workdir, model, port=str(free_port))
    saved = workdir / "node.json"
    assert main(["snapshot", "--python", str(server.python), "--config", str(launch), "-o", str(saved)]) == 0
    capsys.readouterr()
    _, live = serve_check(run_json, server, launch)
    _, replayed = run_json("--snapshot", str(saved), "--pack", "open-autoglm-server")
    for check_id in ("cuda.memory", "config.values", "packages.required"):
        assert result(replayed, check_id) | {"duration_ms": 0} == result(live, check_id) | {"duration_ms": 0}
    assert json.loads(saved.read_text())["config"]["engine"] == "vllm"


def test_a_yaml_of_flags_is_a_launch_command_too(
    workdir: Path, run_json: RunJson, gpu_host: Callable[[str], None], server: Venv, model: Path, free_port: int
) -> None:
    gpu_host("a100-40gb")
    launch = workdir / "vllm.yaml"  # vLLM's own --config file: flag names as keys
    launch.write_text(
        f"model: {model}\nserved-model-name: autoglm-phone-9b\nmax_model_len: 25480\n"
        f"limit-mm-per-prompt: '{{\"image\":10}}'\nport: {free_port}\n"
    )
    code, report = serve_check(run_json, server, launch)
    assert result(report, "weights.files")["status"] == "pass"
    assert "25480-token sequence" in finding(report, "cuda.memory", "cuda.memory-fits")["message"]
    assert result(report, "config.values")["status"] == "pass", codes(report, "config.values")


@pytest.mark.parametrize(
    ("engine", "version", "pinned"), [("vllm", "0.12.0", "2.9.0"), ("sglang", "0.5.6.post1", "2.9.1")]
)
def test_the_engines_torch_pin_is_read_from_its_own_metadata(
    workdir: Path, run_json: RunJson, venv: Venv, engine: str, version: str, pinned: str
) -> None:
    server_venv(venv, engine=engine, version=version, torch="2.8.0")  # another torch installed over the engine's
    code, report = run_json("--python", str(venv.python), "--pack", "open-autoglm-server", "--only", "packages.*")
    assert code == 1
    conflict = next(f for f in result(report, "packages.conflicts")["findings"] if "torch" in f["evidence"]["expected"])
    assert f"{engine} {version} requires torch=={pinned}, but torch 2.8.0 is installed" in conflict["message"]
