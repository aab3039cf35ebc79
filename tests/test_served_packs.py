"""The two packs of the served deployment, one per side, and --pack given more than once (through the CLI)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import packs
from autoglm_doctor.cli import main
from autoglm_doctor.probe.collect import ENV_VARS
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import codes, result
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_phone, server_venv, write_launch
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]
PHONE_VARS = [name for name in ENV_VARS if name.startswith("PHONE_AGENT_")]


@pytest.fixture
def client(venv: Venv, monkeypatch: pytest.MonkeyPatch) -> Venv:
    """A phone-agent client: Open-AutoGLM's requirements.txt installed, no PHONE_AGENT_* set, no GPU driver."""
    venv.add("openai", "2.9.0")
    venv.add("Pillow", "12.0.0", package="PIL")
    for name in PHONE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("no-driver")))
    return venv


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_phone_pack_on_a_client_never_asks_for_vllm_or_a_gpu(workdir: Path, run_json: RunJson, client: Venv) -> None:
    code, report = run_json(
        "--python", str(client.python), "--pack", "open-autoglm-phone", "--skip", "devices.*,service.*"
    )
    assert report["packs"] == ["open-autoglm-phone"]
    assert report["config"] is None
    asked = [f for r in report["results"] for f in r["findings"] if f["severity"] != "info"]
    for server_thing in ("vllm", "sglang", "cuda", "gpu"):
        assert server_thing not in json.dumps(asked).lower(), server_thing
    assert "vllm" not in json.dumps(report).lower()
    left_out = {item["id"] for item in report["not_applicable"]}
    assert {"cuda.driver", "cuda.torch-build", "cuda.memory"} <= left_out  # not the client's: not run, not shown
    assert result(report, "packages.required")["status"] == "pass"
    assert result(report, "packages.versions")["status"] == "pass"
    env = {f["code"]: f for f in result(report, "config.env")["findings"] if "BASE_URL" in f["message"]}
    base = env["config.env-default"]
    assert base["severity"] == "info"
    assert "PHONE_AGENT_BASE_URL is not set: the client uses its default http://localhost:8000/v1" in base["message"]
    model = next(f for f in result(report, "config.env")["findings"] if "PHONE_AGENT_MODEL" in f["message"])
    assert model["severity"] == "info" and "default autoglm-phone-9b" in model["message"]
    assert result(report, "config.env")["status"] == "pass"
    assert code == 0, [(r["id"], r["status"]) for r in report["results"] if r["status"] in ("fail", "error")]


def test_phone_pack_pins_the_clients_requirements(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    venv.add("openai", "1.55.0")
    venv.add("Pillow", "11.0.0", package="PIL")
    code, report = run_json("--python", str(venv.python), "--pack", "open-autoglm-phone", "--only", "packages.*")
    assert code == 1
    findings = result(report, "packages.versions")["findings"]
    out_of_range = {f["evidence"]["observed"]: f["evidence"]["expected"] for f in findings}
    assert out_of_range == {"openai==1.55.0": "openai>=2.9.0", "Pillow==11.0.0": "Pillow>=12.0.0"}


def test_requests_is_required_for_ios_only(
    workdir: Path, run_json: RunJson, client: Venv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, report = run_json("--python", str(client.python), "--pack", "open-autoglm-phone", "--only", "packages.required")
    assert result(report, "packages.required")["status"] == "pass"
    monkeypatch.setenv("PHONE_AGENT_DEVICE_TYPE", "ios")
    code, report = run_json(
        "--python", str(client.python), "--pack", "open-autoglm-phone", "--only", "packages.required"
    )
    assert code == 1
    (missing,) = result(report, "packages.required")["findings"]
    assert "requests is not installed (PHONE_AGENT_DEVICE_TYPE=ios)" in missing["message"]


@pytest.mark.parametrize(
    "pack_args",
    [
        ("--pack", "open-autoglm-server", "--pack", "open-autoglm-phone"),
        ("--pack", "open-autoglm-server,open-autoglm-phone"),
    ],
    ids=["repeated", "comma-separated"],
)
def test_both_packs_merge_and_each_check_runs_once(
    workdir: Path,
    run_json: RunJson,
    client: Venv,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pack_args: tuple[str, ...],
) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("h100-80gb")))
    server_venv(client)
    model = build_autoglm_phone(tmp_path / "AutoGLM-Phone-9B")
    launch = write_launch(workdir, model, port=str(_port()))
    monkeypatch.setenv("PHONE_AGENT_MODEL", "autoglm-phone")  # not what the server serves
    _, report = run_json("--python", str(client.python), "--config", str(launch), *pack_args, "--skip", "devices.*")
    assert report["packs"] == ["open-autoglm-server", "open-autoglm-phone"]
    assert report["config"] == str(launch)
    ids = [r["id"] for r in report["results"]]
    assert len(ids) == len(set(ids))
    assert result(report, "packages.required")["status"] == "pass"  # vllm and openai + Pillow, all there
    assert result(report, "cuda.memory")["status"] == "pass"  # the server's GPU need wins over the client's none
    mismatch = [f for f in result(report, "config.values")["findings"] if f["code"] == "config.served-model-mismatch"]
    assert mismatch and "PHONE_AGENT_MODEL=autoglm-phone-9b" in mismatch[0]["fix"]
    assert "config.env-default" in codes(report, "config.env")  # the client's env rules came along


def test_merge_keeps_both_sides_requirements() -> None:
    merged = packs.load("open-autoglm-server,open-autoglm-phone")
    assert merged.names == ("open-autoglm-server", "open-autoglm-phone")
    assert merged.name == "open-autoglm-server + open-autoglm-phone"
    assert merged.gpu == "required"
    by_name = {r.name: r for r in merged.packages}
    assert by_name["vllm"].describe() == "vllm>=0.12.0 or sglang>=0.5.6.post1"
    assert by_name["openai"].spec == ">=2.9.0"
    assert {"launch", "env", "service", "devices"} <= set(merged.sections)
    assert packs.load("open-autoglm-phone,open-autoglm-phone").names == ("open-autoglm-phone",)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("rich", "pack open-autoglm-server + open-autoglm-phone · config {config}"),
        ("markdown", "| Config | `{config}` |"),
        ("junit", '<property name="config" value="{config}" />'),
        ("github", "(pack open-autoglm-server + open-autoglm-phone, config {config})"),
    ],
)
def test_every_report_header_names_the_packs_and_the_config(
    workdir: Path, capsys: pytest.CaptureFixture[str], fmt: str, expected: str
) -> None:
    config = workdir / "serve.sh"
    config.write_text("vllm serve /models/none --served-model-name autoglm-phone-9b\n")
    args = ["check", "--no-smoke", "--format", fmt, "--config", str(config), "--only", "config.syntax"]
    main([*args, "--pack", "open-autoglm-server", "--pack", "open-autoglm-phone"])
    out = capsys.readouterr().out
    assert expected.format(config=config) in out
    if fmt == "markdown":
        assert "| Pack | open-autoglm-server + open-autoglm-phone |" in out


def test_a_served_model_is_not_staged_in_host_ram() -> None:
    import dataclasses

    from autoglm_doctor.configfile.load import parse_config
    from autoglm_doctor.probe.host import HostFacts
    from tests.helpers.gpu import gpu_facts, nine_b_model, run_check, snapshot

    launch = b"vllm serve /models/AutoGLM-Phone-9B --served-model-name autoglm-phone-9b --max-model-len 8192\n"
    config = parse_config(launch, shown="serve.sh", folder=Path("/srv"), cwd=Path("/srv"), environ={})
    assert config.engine == "vllm"
    host = HostFacts(mem_total=16 * 1024**3, mem_available=8 * 1024**3)
    served = dataclasses.replace(snapshot(gpu=gpu_facts("h100-80gb"), model=nine_b_model(), host=host), config=config)
    codes_served = [f.code for f in run_check("system.resources", served, pack="open-autoglm-server").findings]
    assert "system.ram-staging" not in codes_served
    in_process = snapshot(
        gpu=gpu_facts("h100-80gb"), model=nine_b_model(), host=host, config={"torch_dtype": "bfloat16"}
    )
    assert "system.ram-staging" in [f.code for f in run_check("system.resources", in_process).findings]


def test_vllm_batches_more_on_large_gpus_except_the_a100() -> None:
    from autoglm_doctor.checks._served import Launch, served_memory
    from autoglm_doctor.probe.gpu import GpuDevice
    from tests.helpers.gpu import nine_b_model

    launch = Launch("vllm", 8192, 1, 0.9, False, "auto", "auto", None, None, None, False)
    model = nine_b_model(intermediate_size=13696, vocab_size=151552)
    h100 = GpuDevice(index=0, name="NVIDIA H100 80GB HBM3", memory_total=85520809984, memory_free=85520809984)
    a100 = GpuDevice(index=0, name="NVIDIA A100-SXM4-80GB", memory_total=85899345920, memory_free=85899345920)
    h100_memory, a100_memory = served_memory(launch, model, h100), served_memory(launch, model, a100)
    assert h100_memory is not None and a100_memory is not None
    assert "8192 tokens" in h100_memory.activation_formula and "1024 x 151552 logits" in h100_memory.activation_formula
    assert "2048 tokens" in a100_memory.activation_formula and "256 x 151552 logits" in a100_memory.activation_formula


def test_launch_lengths_and_json_flags_read_as_vllm_reads_them() -> None:
    from autoglm_doctor.configfile.launch import token_count
    from autoglm_doctor.engines.base import FlagSpec, convert

    assert [token_count(v) for v in (25480, "25480", "32k", "32K", "1M", "lots")] == [
        25480,
        25480,
        32000,
        32768,
        1048576,
        None,
    ]
    limit = FlagSpec(names=["--limit-mm-per-prompt"], kind="json")
    message = "Value {value} cannot be converted to <function loads>."
    assert convert(limit, '{"image":10}', engine_json_message=message) == ({"image": 10}, "")
    # vLLM >= 0.10 reads the flag with json.loads only: the old image=10,video=1 form stops it
    assert convert(limit, "image=10,video=1", engine_json_message=message) == (
        None,
        "argument --limit-mm-per-prompt: Value image=10,video=1 cannot be converted to <function loads>.",
    )
