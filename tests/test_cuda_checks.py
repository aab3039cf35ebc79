"""cuda.* checks: the acceptance scenarios through the CLI (real venvs + NVML fixtures) and on synthetic snapshots."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.model import Severity, Status
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import codes, result
from tests.helpers.gpu import finding, fixture, gpu_facts, nine_b_model, run_check, snapshot, write_gpu_pack
from tests.helpers.venvs import Venv

Run = Callable[..., tuple[int, dict[str, Any]]]


def one(report: dict[str, Any], check_id: str, code: str) -> dict[str, Any]:
    found = [f for f in result(report, check_id)["findings"] if f["code"] == code]
    assert found, f"{code} not in {check_id}: {codes(report, check_id)}"
    return found[0]


@pytest.fixture
def gpu_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """Make the doctor see a fixture's GPUs (and optionally a fake nvcc first on PATH)."""

    def use(name: str, *, nvcc: str | None = None) -> None:
        monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture(name)))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        if nvcc is not None:
            bin_dir = tmp_path / "fakebin"
            bin_dir.mkdir()
            script = bin_dir / "nvcc"
            script.write_text(f'#!/bin/sh\necho "Cuda compilation tools, release {nvcc}, V{nvcc}.89"\n')
            script.chmod(0o755)
            monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")

    return use


# --- acceptance, through the CLI ------------------------------------------------------------


def test_driver_470_with_torch_cu121(venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]) -> None:
    gpu_host("v100-driver470")
    venv.add_torch("2.1.2+cu121", cuda="12.1")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.*")
    assert code == 1
    assert result(report, "cuda.torch-build")["status"] == "fail"
    too_old = one(report, "cuda.torch-build", "cuda.driver-too-old")
    assert "found version 11040" in too_old["message"]
    assert ">= 525.60.13" in too_old["message"]  # the driver that would run +cu121
    # no 11.x build up to 11.4 exists: the newest torch whose cu118 build runs on R470 (minor-version
    # compatibility, said so) and has sm_70 -- the build `check --fix` pins (tests/test_cuda_fix_agree.py)
    assert too_old["fix"] == (
        f"{venv.python} -m pip install torch==2.7.1+cu118 --index-url https://download.pytorch.org/whl/cu118"
    )
    assert "only through CUDA minor-version compatibility" in too_old["message"]


def test_cpu_torch_on_h100_host(venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]) -> None:
    gpu_host("h100-80gb")
    venv.add_torch("2.13.0+cpu", cuda=None)
    code, report = run_json("--python", str(venv.python), "--only", "cuda.*")
    assert code == 1
    cpu = one(report, "cuda.torch-build", "cuda.cpu-only-torch")
    assert "NVIDIA H100 80GB HBM3" in cpu["message"]
    # a build the 12.4 driver runs in full (cu124, newest line 2.6) before 2.14.1+cu126 through minor-version
    # compatibility: the same build `check --fix` pins
    assert cpu["fix"].endswith("-m pip install torch==2.6.0+cu124 --index-url https://download.pytorch.org/whl/cu124")
    assert "runs on this driver (in full)" in cpu["message"]
    assert "minor-version compatibility" not in cpu["message"]
    driver = result(report, "cuda.driver")
    assert driver["status"] == "pass"
    gpus = one(report, "cuda.driver", "cuda.gpus")
    assert "550.54.15" in gpus["message"] and "CUDA <= 12.4" in gpus["message"]
    assert "sm_90 Hopper" in gpus["evidence"]["observed"]


def test_torch_1_13_on_sm_120(venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]) -> None:
    gpu_host("rtx5090")
    venv.add_torch("1.13.1+cu117", cuda="11.7")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.torch-build")
    assert code == 1
    arch = one(report, "cuda.torch-build", "cuda.arch-not-in-build")
    assert "no kernel image is available for execution on the device" in arch["message"]
    assert arch["evidence"]["observed"] == "sm_120"
    assert "sm_86" in arch["evidence"]["expected"]
    # 2.12-2.14 only have sm_120 in cu13x (needs driver >= 580); 2.11 cu128 has it and runs on 570
    assert arch["fix"].endswith("torch==2.11.0+cu128 --index-url https://download.pytorch.org/whl/cu128")


def test_nvcc_11_8_with_torch_cu121(venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]) -> None:
    gpu_host("h100-80gb", nvcc="11.8")
    venv.add_torch("2.1.2+cu121", cuda="12.1")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.toolkit")
    assert code == 0  # a warning only
    toolkit = result(report, "cuda.toolkit")
    assert toolkit["status"] == "warn"
    mismatch = one(report, "cuda.toolkit", "cuda.nvcc-mismatch")
    assert mismatch["severity"] == "warning"
    assert "flash-attn" in mismatch["message"] and "Running the model is not affected" in mismatch["message"]
    assert "export CUDA_HOME=/usr/local/cuda-12.1" in mismatch["fix"]


def test_cuda_visible_devices_empty_on_gpu_host(
    venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu_host("h100-80gb")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    venv.add_torch("2.5.1+cu124", cuda="12.4")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.driver")
    hidden = one(report, "cuda.driver", "cuda.all-gpus-hidden")
    assert code == 0 and result(report, "cuda.driver")["status"] == "warn"  # nothing needs the GPU
    assert "CUDA_VISIBLE_DEVICES=''" in hidden["message"] and "unset CUDA_VISIBLE_DEVICES" in hidden["fix"]
    pack = write_gpu_pack(workdir / "gpu.yaml", "required")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.driver", "--pack", str(pack))
    assert code == 1 and result(report, "cuda.driver")["status"] == "fail"
    assert one(report, "cuda.driver", "cuda.all-gpus-hidden")["severity"] == "error"


def test_no_driver_with_pack_requiring_a_gpu(
    venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]
) -> None:
    gpu_host("no-driver")
    venv.add_torch("2.5.1+cu124", cuda="12.4")
    pack = write_gpu_pack(workdir / "gpu.yaml", "required")
    code, report = run_json("--python", str(venv.python), "--only", "cuda.*", "--pack", str(pack))
    assert code == 1
    missing = one(report, "cuda.driver", "cuda.no-driver")
    assert "NVML Shared Library Not Found" in missing["message"]
    assert ">= 525.60.13 for torch +cu124" in missing["fix"]
    assert result(report, "cuda.torch-build")["status"] == "skip"


def test_snapshot_with_gpu_facts_re_evaluates_anywhere(
    venv: Venv, workdir: Path, gpu_host: Callable[..., None], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    gpu_host("h100-80gb")
    venv.add_torch("2.13.0+cpu", cuda=None)
    snap_file = workdir / "node.json"
    assert main(["snapshot", "--python", str(venv.python), "-o", str(snap_file)]) == 0
    monkeypatch.delenv(NVML_FIXTURE_ENV)  # evaluate on a machine without the GPU
    capsys.readouterr()
    code = main(["check", "--snapshot", str(snap_file), "--only", "cuda.*", "--format", "json", "--no-smoke"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 1
    assert one(report, "cuda.torch-build", "cuda.cpu-only-torch")
    uuid = "GPU-3f1c2a9e-5b7d-4e21-9c0a-8d2b6f4e1a77"
    assert uuid in snap_file.read_text()  # stored whole in the snapshot
    assert uuid not in out and "GPU-3f1c2a9e…" in out  # printed shortened


# --- more cases, on synthetic snapshots -----------------------------------------------------


def test_no_driver_with_config_needing_a_gpu() -> None:
    snap = snapshot(gpu=gpu_facts("no-driver"), torch="2.5.1+cu124", cuda="12.4", config={"device": "cuda:0"})
    res = run_check("cuda.driver", snap)
    assert res.status is Status.FAIL
    found = finding(res, "cuda.no-driver")
    assert found.message.startswith("config device: cuda:0, but no NVIDIA driver answers")
    assert "ubuntu-drivers" in found.fix


def test_no_driver_and_cpu_config_skips() -> None:
    snap = snapshot(gpu=gpu_facts("no-driver"), torch="2.5.1+cpu", config={"model": {"device_map": "cpu"}})
    res = run_check("cuda.driver", snap)
    assert res.status is Status.SKIP
    assert "runs on the CPU (config device_map: cpu)" in res.findings[0].message
    res = run_check("cuda.driver", snapshot(gpu=gpu_facts("no-driver"), torch="2.5.1+cpu"))
    assert res.status is Status.SKIP and "nothing needs a GPU" in res.findings[0].message


def test_device_flag_overrides_config() -> None:
    snap = snapshot(gpu=gpu_facts("no-driver"), torch="2.5.1+cu124", cuda="12.4", config={"device": "cpu"})
    assert run_check("cuda.driver", snap, device="cuda").status is Status.FAIL


def test_no_driver_in_container_says_pass_the_gpus() -> None:
    from autoglm_doctor.probe.host import HostFacts

    snap = snapshot(
        gpu=gpu_facts("no-driver"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"device_map": "cuda:0"},
        host=HostFacts(in_container=True, container_markers=["/.dockerenv"]),
    )
    assert "docker run --gpus all" in finding(run_check("cuda.driver", snap), "cuda.no-driver").fix


def test_invalid_visible_devices_entry_warns() -> None:
    snap = snapshot(gpu=gpu_facts("h100-80gb", {"CUDA_VISIBLE_DEVICES": "0,3"}), torch="2.5.1+cu124", cuda="12.4")
    res = run_check("cuda.driver", snap)
    assert res.status is Status.WARN
    assert "'3' names no GPU" in finding(res, "cuda.visible-devices-invalid").message


def test_rocm_build_on_nvidia_host() -> None:
    snap = snapshot(gpu=gpu_facts("rtx4090"), torch="2.5.1+rocm6.2", hip="6.2.41133")
    res = run_check("cuda.torch-build", snap)
    found = finding(res, "cuda.rocm-build-on-nvidia")
    assert res.status is Status.FAIL
    # driver 535 runs CUDA 12.2: cu121 in full, 2.5 is the newest line with cu121
    assert found.fix.endswith("torch==2.5.1+cu121 --index-url https://download.pytorch.org/whl/cu121")


def test_minor_version_compatibility_is_explained_not_failed() -> None:
    snap = snapshot(gpu=gpu_facts("a100-40gb-mig"), torch="2.5.1+cu124", cuda="12.4")
    res = run_check("cuda.torch-build", snap)
    assert res.status is Status.PASS
    note = finding(res, "cuda.minor-version-compat")
    assert "CUDA 12.4" in note.message and "<= 12.2" in note.message and ">= 525.60.13" in note.message
    assert finding(res, "cuda.torch-build-ok")


def test_pypi_wheel_without_tag_uses_the_default_variant() -> None:
    # torch 2.11 from PyPI is CUDA 13.0: a 12.x driver cannot run it
    snap = snapshot(gpu=gpu_facts("rtx4090"), torch="2.11.0", cuda="13.0")
    res = run_check("cuda.torch-build", snap)
    found = finding(res, "cuda.driver-too-old")
    assert "found version 12020" in found.message and ">= 580.65.06" in found.message
    assert found.fix.endswith("torch==2.5.1+cu121 --index-url https://download.pytorch.org/whl/cu121")


def test_suggestion_respects_python_version_and_pairs_torchvision() -> None:
    from autoglm_doctor.probe.snapshot import Distribution

    snap = snapshot(gpu=gpu_facts("v100-driver470"), torch="2.1.2+cu121", cuda="12.1")
    snap = dataclasses.replace(
        snap,
        python=dataclasses.replace(snap.python, version="3.8.18"),
        distributions=[*snap.distributions, Distribution("torchvision", "0.16.2", "/srv/site", "/srv/site/tv")],
    )
    found = finding(run_check("cuda.torch-build", snap), "cuda.driver-too-old")
    # torch 2.5+ has no Python 3.8 wheels; 2.4.1 cu118 still runs on R470 and has sm_70
    assert found.fix.endswith(
        "torch==2.4.1+cu118 'torchvision==0.19.*' --index-url https://download.pytorch.org/whl/cu118"
    )


def test_low_confidence_rows_say_so() -> None:
    facts = dataclasses.replace(gpu_facts("h100-80gb"), driver_version="610.50.01", cuda_driver_version=None)
    res = run_check("cuda.driver", snapshot(gpu=facts, torch="2.13.0+cu130", cuda="13.0"))
    message = finding(res, "cuda.gpus").message
    assert "CUDA <= 13.3 (inferred from the driver version" in message
    assert "low confidence" in message


def test_toolkit_skips_without_nvcc_or_cuda_torch() -> None:
    res = run_check("cuda.toolkit", snapshot(gpu=gpu_facts("t4"), torch="2.1.2+cu121", cuda="12.1"))
    assert res.status is Status.SKIP and "no nvcc" in res.findings[0].message
    res = run_check("cuda.toolkit", snapshot(gpu=gpu_facts("t4", nvcc="12.1"), torch="2.1.2+cpu"))
    assert res.status is Status.SKIP and "not a CUDA build" in res.findings[0].message
    res = run_check("cuda.toolkit", snapshot(gpu=gpu_facts("t4", nvcc="12.4"), torch="2.1.2+cu121", cuda="12.1"))
    assert res.status is Status.PASS and finding(res, "cuda.nvcc-minor-mismatch")


# --- cuda.memory ----------------------------------------------------------------------------


def test_9b_bf16_on_a_16gb_card() -> None:
    snap = snapshot(
        gpu=gpu_facts("rtx4060ti-16gb"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"model": {"torch_dtype": "bfloat16", "device": "cuda:0", "model_max_length": 8192}},
        model=nine_b_model(),
    )
    res = run_check("cuda.memory", snap)
    assert res.status is Status.FAIL
    found = finding(res, "cuda.memory-insufficient")
    assert "CUDA out of memory" in found.message
    assert "9.40B params x 2 B (bfloat16, config torch_dtype) = 17.5 GiB" in found.message
    assert "KV cache 2 x 40 layers x 2 KV heads x 128 head_dim x 8192 tokens x batch 1 x 2 B = 0.3 GiB" in found.message
    assert found.observed == "15.5 GiB free"
    assert found.fix.startswith("set load_in_8bit: true (needs bitsandbytes) in deploy.yaml")
    assert found.location is not None and found.location.file == "deploy.yaml"


def test_device_map_auto_warns_of_offload() -> None:
    snap = snapshot(
        gpu=gpu_facts("rtx4060ti-16gb"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"torch_dtype": "bfloat16", "device_map": "auto", "max_batch_size": 4},
        model=nine_b_model(),
    )
    res = run_check("cuda.memory", snap)
    assert res.status is Status.WARN
    found = finding(res, "cuda.memory-offload")
    assert "offload" in found.message and "batch 4" in found.message and "4096 assumed" in found.message


def test_9b_fits_on_h100() -> None:
    snap = snapshot(
        gpu=gpu_facts("h100-80gb"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"torch_dtype": "auto"},
        model=nine_b_model(),
    )
    res = run_check("cuda.memory", snap)
    assert res.status is Status.PASS
    assert "torch_dtype auto -> config.json" in finding(res, "cuda.memory-fits").message


def test_bf16_requested_on_t4() -> None:
    small = nine_b_model(parameter_count=1_500_000_000, parameter_bytes=3_000_000_000, num_hidden_layers=28)
    snap = snapshot(
        gpu=gpu_facts("t4"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"torch_dtype": "bf16", "device": "cuda"},
        model=small,
    )
    res = run_check("cuda.memory", snap)
    assert res.status is Status.FAIL
    found = finding(res, "cuda.bf16-unsupported")
    assert found.severity is Severity.ERROR
    assert "sm_75 Turing" in found.message and ">= 8.0" in found.message
    assert found.fix == "set torch_dtype: float16 in deploy.yaml"
    assert finding(res, "cuda.memory-fits")


def test_bf16_from_model_config_on_t4_only_warns() -> None:
    snap = snapshot(
        gpu=gpu_facts("t4"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"torch_dtype": "auto"},
        model=nine_b_model(parameter_count=1_000_000_000),
    )
    found = finding(run_check("cuda.memory", snap), "cuda.bf16-unsupported")
    assert found.severity is Severity.WARNING


def test_unset_dtype_on_transformers_4_is_float32() -> None:
    snap = snapshot(gpu=gpu_facts("h100-80gb"), torch="2.5.1+cu124", cuda="12.4", config={}, model=nine_b_model())
    res = run_check("cuda.memory", snap)
    assert finding(res, "cuda.float32-default")
    assert "x 4 B (float32" in finding(res, "cuda.memory-fits").message
    five = snapshot(
        gpu=gpu_facts("h100-80gb"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={},
        model=nine_b_model(),
        transformers="5.2.0",
    )
    assert "x 2 B (bfloat16" in finding(run_check("cuda.memory", five), "cuda.memory-fits").message


def test_mig_instance_is_what_a_process_gets() -> None:
    snap = snapshot(
        gpu=gpu_facts("a100-40gb-mig"),
        torch="2.5.1+cu124",
        cuda="12.4",
        config={"torch_dtype": "bfloat16"},
        model=nine_b_model(parameter_count=7_000_000_000),
    )
    found = finding(run_check("cuda.memory", snap), "cuda.memory-fits")
    assert "[largest MIG instance]" in found.message and "19.4 GiB free" in found.message


def test_memory_skips_without_model_facts_or_gpu() -> None:
    res = run_check(
        "cuda.memory",
        snapshot(
            gpu=gpu_facts("t4"), torch="2.5.1+cu124", model=nine_b_model(parameter_count=None, parameter_bytes=None)
        ),
    )
    assert res.status is Status.SKIP and "parameter count is unknown" in res.findings[0].message
    res = run_check("cuda.memory", snapshot(gpu=gpu_facts("no-driver"), torch="2.5.1+cu124", model=nine_b_model()))
    assert res.status is Status.SKIP


def test_parameter_bytes_are_rescaled_when_count_is_missing() -> None:
    model = nine_b_model(parameter_count=None)  # 18.8 GB stored as BF16
    snap = snapshot(gpu=gpu_facts("h100-80gb"), torch="2.5.1+cu124", config={"torch_dtype": "float32"}, model=model)
    assert (
        "weights stored bytes rescaled (float32, config torch_dtype) = 35.0 GiB"
        in finding(run_check("cuda.memory", snap), "cuda.memory-fits").message
    )


def test_explicit_device_map_targets_the_named_gpus() -> None:
    data = {
        "driver_version": "550.54.15",
        "cuda_driver_version": 12040,
        "devices": [
            {
                "name": "small",
                "uuid": "GPU-aaaa",
                "compute_capability": "8.9",
                "memory_total": 8 * 2**30,
                "memory_free": 8 * 2**30,
            },
            {
                "name": "big",
                "uuid": "GPU-bbbb",
                "compute_capability": "9.0",
                "memory_total": 80 * 2**30,
                "memory_free": 80 * 2**30,
            },
        ],
    }
    from autoglm_doctor.probe import gpu as gpu_probe
    from autoglm_doctor.probe.gpu import FixtureBackend

    facts = gpu_probe.gather(backend=FixtureBackend(data), environ={"PATH": ""})
    for device_map, status in (
        ({"": 1}, Status.PASS),
        ({"model": "cuda:1"}, Status.PASS),
        ({"": "cuda:0"}, Status.FAIL),
    ):
        snap = snapshot(
            gpu=facts,
            torch="2.5.1+cu124",
            config={"torch_dtype": "bfloat16", "device_map": device_map},
            model=nine_b_model(),
        )
        assert run_check("cuda.memory", snap).status is status, device_map
    snap = snapshot(
        gpu=facts, torch="2.5.1+cu124", config={"torch_dtype": "bfloat16", "device": "cuda:1"}, model=nine_b_model()
    )
    assert "on GPU 1 (big)" in finding(run_check("cuda.memory", snap), "cuda.memory-fits").message


def test_no_driver_with_config_file_needing_a_gpu(
    venv: Venv, workdir: Path, run_json: Run, gpu_host: Callable[..., None]
) -> None:
    gpu_host("no-driver")
    venv.add_torch("2.5.1+cu124", cuda="12.4")
    config = workdir / "deploy.yaml"
    config.write_text("model:\n  device_map: cuda:0\n  torch_dtype: bfloat16\n")
    code, report = run_json("--python", str(venv.python), "--config", str(config), "--only", "cuda.driver")
    assert code == 1
    assert (
        "config device_map: cuda:0, but no NVIDIA driver answers"
        in one(report, "cuda.driver", "cuda.no-driver")["message"]
    )


def test_nvidia_smi_fallback_is_listed_with_the_nvml_failure() -> None:
    from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts

    facts = GpuFacts(
        nvml_error="NVML Shared Library Not Found",
        source="nvidia-smi",
        driver_version="550.90.07",
        gpus=[GpuDevice(index=0, name="NVIDIA L4", compute_capability="8.9", memory_total=2**34, memory_free=2**34)],
        visible=[0],
    )
    res = run_check("cuda.driver", snapshot(gpu=facts, torch="2.5.1+cu124", cuda="12.4"))
    assert res.status is Status.PASS
    assert "LD_LIBRARY_PATH" in finding(res, "cuda.nvml-failed").message
    assert "runs CUDA <= 12.4 (inferred from the driver version)" in finding(res, "cuda.gpus").message
