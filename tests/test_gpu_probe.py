"""GPU facts: the fake NVML backend, CUDA_VISIBLE_DEVICES, the real probes on this GPU-less machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoglm_doctor.probe import gpu as gpu_probe
from autoglm_doctor.probe.gpu import (
    NVML_FIXTURE_ENV,
    FixtureBackend,
    GpuFacts,
    PynvmlBackend,
    parse_nvidia_smi,
    resolve_visible,
    run_tool,
    short_uuid,
)
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.serde import from_data, to_data
from tests.helpers.gpu import FIXTURES, fixture, gpu_facts, snapshot

ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def write_script(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_every_fixture_describes_a_real_gpu_with_sources() -> None:
    assert {"h100-80gb", "a100-40gb-mig", "rtx4090", "t4", "v100-driver470", "rtx5090", "no-driver"} <= set(
        ALL_FIXTURES
    )
    for name in ALL_FIXTURES:
        data = json.loads(fixture(name).read_text())
        assert data["sources"] and data["description"], name
        facts = gpu_facts(name)
        if data.get("nvml_error"):
            assert facts.nvml_error and not facts.gpus
            continue
        assert not facts.nvml_error and facts.source == f"fixture {name}.json"
        assert len(facts.gpus) == len(data["devices"]) >= 1
        for device in facts.gpus:
            assert device.cc is not None and device.memory_total > device.memory_free > 0
            assert device.uuid.startswith("GPU-")


def test_h100_facts() -> None:
    facts = gpu_facts("h100-80gb")
    (h100,) = facts.gpus
    assert facts.driver_version == "550.54.15"
    assert facts.cuda_driver == (12, 4)
    assert h100.name == "NVIDIA H100 80GB HBM3" and h100.cc == (9, 0)
    assert round(h100.memory_total / 2**30) == 80
    assert facts.visible == [0] and facts.cuda_visible_devices is None


def test_a100_mig_and_rtx4090_processes() -> None:
    (a100,) = gpu_facts("a100-40gb-mig").gpus
    assert a100.mig_mode and len(a100.mig_devices) == 2
    assert all(m.uuid.startswith("MIG-") for m in a100.mig_devices)
    (rtx,) = gpu_facts("rtx4090").gpus
    assert [p.pid for p in rtx.processes] == [2417, 3301]
    assert rtx.processes[1].used_memory == 2300 * 2**20


def test_gpu_facts_round_trip_through_snapshot_json() -> None:
    snap = snapshot(gpu=gpu_facts("a100-40gb-mig", {"CUDA_VISIBLE_DEVICES": "0"}), torch="2.5.1+cu124", cuda="12.4")
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again.gpu == snap.gpu
    assert from_data(GpuFacts, to_data(snap.gpu)) == snap.gpu


@pytest.mark.parametrize(
    ("value", "visible", "problem"),
    [
        (None, [0, 1, 2], ""),
        ("", [], ""),
        ("2,0", [2, 0], ""),
        (" 1 ", [1], ""),
        ("GPU-bbbb", [1], ""),
        ("0,7,1", [0], "'7' names no GPU"),
        ("-1", [], "'-1' names no GPU"),
        ("0,0", [0], "repeats a GPU"),
        ("GPU-", [], "names no GPU"),
    ],
)
def test_cuda_visible_devices_follows_cuda_rules(value: str | None, visible: list[int], problem: str) -> None:
    data = {
        "driver_version": "550.54.15",
        "cuda_driver_version": 12040,
        "devices": [
            {"name": f"GPU{i}", "uuid": f"GPU-{c * 4}-0000", "compute_capability": "8.0"} for i, c in enumerate("abc")
        ],
    }
    env = {"PATH": ""} if value is None else {"PATH": "", "CUDA_VISIBLE_DEVICES": value}
    facts = gpu_probe.gather(backend=FixtureBackend(data), environ=env)
    assert facts.visible == visible
    assert facts.cuda_visible_devices == value
    if problem:
        assert problem in facts.visible_problems[0]
    else:
        assert facts.visible_problems == []


def test_mig_uuid_selects_its_parent() -> None:
    facts = gpu_facts("a100-40gb-mig")
    mig = facts.gpus[0].mig_devices[1].uuid
    assert resolve_visible(mig, facts.gpus) == ([0], [])


def test_short_uuid_never_keeps_the_whole_uuid() -> None:
    uuid = "GPU-3f1c2a9e-5b7d-4e21-9c0a-8d2b6f4e1a77"
    assert short_uuid(uuid) == "GPU-3f1c2a9e…"
    assert uuid not in short_uuid(uuid)


def test_fixture_env_var_selects_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("t4")))
    facts = gpu_probe.gather()
    assert facts.source == "fixture t4.json" and facts.gpus[0].name == "Tesla T4"


def test_unreadable_fixture_is_an_nvml_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    facts = gpu_probe.gather(backend=FixtureBackend.from_file(bad), environ={"PATH": ""})
    assert "unreadable" in facts.nvml_error and facts.gpus == []


def test_real_nvml_on_this_machine_reports_no_driver_as_a_fact() -> None:
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA driver")
    facts = gpu_probe.gather(backend=PynvmlBackend(), environ={"PATH": ""})
    assert facts.nvml_error
    assert "NVML" in facts.nvml_error or "nvidia-ml" in facts.nvml_error
    assert facts.gpus == [] and facts.visible == []


def test_real_nvcc_is_found_and_read() -> None:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("no nvcc on this machine")
    expected = re.search(
        r"release (\d+\.\d+)", subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    )
    assert expected is not None
    facts = gpu_probe.gather(backend=FixtureBackend({"nvml_error": "none"}), environ=dict(os.environ))
    assert facts.nvcc_path == nvcc
    assert facts.nvcc_version == expected.group(1) and facts.nvcc_error == ""


def test_fake_nvcc_on_path_is_parsed(tmp_path: Path) -> None:
    write_script(tmp_path / "bin", "nvcc", 'echo "Cuda compilation tools, release 11.8, V11.8.89"')
    facts = gpu_probe.gather(
        backend=FixtureBackend.from_file(fixture("h100-80gb")), environ={"PATH": str(tmp_path / "bin")}
    )
    assert facts.nvcc_version == "11.8"
    assert facts.nvcc_path == str(tmp_path / "bin" / "nvcc")


def test_broken_nvcc_is_an_error_fact(tmp_path: Path) -> None:
    write_script(tmp_path / "bin", "nvcc", "echo 'libcudart missing' >&2; exit 127")
    facts = gpu_probe.gather(backend=FixtureBackend({"nvml_error": "x"}), environ={"PATH": str(tmp_path / "bin")})
    assert facts.nvcc_version == ""
    assert "exit status 127" in facts.nvcc_error and "libcudart missing" in facts.nvcc_error


def test_nvidia_smi_is_the_fallback_when_nvml_fails(tmp_path: Path) -> None:
    write_script(
        tmp_path / "bin",
        "nvidia-smi",
        'echo "0, NVIDIA L4, GPU-0a1b2c3d-0000, 550.90.07, 23034, 22700, 8.9"',
    )
    facts = gpu_probe.gather(
        backend=FixtureBackend({"nvml_error": "NVML Shared Library Not Found"}),
        environ={"PATH": str(tmp_path / "bin")},
    )
    assert facts.source == "nvidia-smi"
    assert facts.driver_version == "550.90.07"
    (l4,) = facts.gpus
    assert l4.cc == (8, 9) and l4.memory_total == 23034 * 2**20
    assert facts.visible == [0]


def test_nvidia_smi_is_not_run_when_nvml_works(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_script(tmp_path / "bin", "nvidia-smi", f"touch {marker}")
    gpu_probe.gather(backend=FixtureBackend.from_file(fixture("t4")), environ={"PATH": str(tmp_path / "bin")})
    assert not marker.exists()


def test_parse_nvidia_smi_skips_garbage() -> None:
    driver, gpus = parse_nvidia_smi("No devices were found\n0, T4, GPU-x, 535.1, [N/A], 10, [N/A]\n")
    assert driver == "535.1" and gpus[0].memory_total == 0 and gpus[0].compute_capability == ""


def test_hung_tool_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = write_script(tmp_path / "bin", "hang", f"sleep 1000 & echo $! > {pidfile}; wait")
    start = time.monotonic()
    run = run_tool([str(script)], timeout=0.5)
    assert time.monotonic() - start < 5
    assert "did not answer within 0.5 s" in run.error
    child = int(pidfile.read_text())
    for _ in range(50):  # the kill is asynchronous; the orphan is reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the hung tool's child {child} is still running")


def test_doctor_never_hangs_on_a_hung_nvidia_smi(tmp_path: Path) -> None:
    """The real probes run on this machine (no driver) with an nvidia-smi that sleeps forever first on PATH."""
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA driver: NVML answers and nvidia-smi is never run")
    bin_dir = tmp_path / "bin"
    write_script(bin_dir, "nvidia-smi", "sleep 100000")
    env = {k: v for k, v in os.environ.items() if k not in (NVML_FIXTURE_ENV, "CUDA_VISIBLE_DEVICES")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoglm_doctor",
            "check",
            "--only",
            "cuda.*,system.*",
            "--no-smoke",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 15, f"the doctor took {elapsed:.1f} s"
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    driver = next(r for r in report["results"] if r["id"] == "cuda.driver")
    assert driver["status"] == "skip"
    message = driver["findings"][0]["message"]
    assert "no NVIDIA driver" in message and "nvidia-smi did not answer within 3 s" in message


class _StubNvmlError(Exception):
    pass


class _StubPynvml:
    """The pynvml functions PynvmlBackend calls, answering like an H100 driver would (NVML needs a GPU)."""

    NVMLError = _StubNvmlError
    NVML_DEVICE_MIG_ENABLE = 1

    class _Memory:
        total = 85520809984
        free = 84986691584

    class _Proc:
        pid = 4242
        usedGpuMemory = 2**30

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"handle{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return b"NVIDIA H100 80GB HBM3"  # old pynvml answers bytes

    def nvmlDeviceGetUUID(self, handle: str) -> str:
        return "GPU-3f1c2a9e-5b7d-4e21-9c0a-8d2b6f4e1a77"

    def nvmlDeviceGetCudaComputeCapability(self, handle: str) -> tuple[int, int]:
        return (9, 0)

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> type:
        return self._Memory

    def nvmlDeviceGetMigMode(self, handle: str) -> list[int]:
        raise _StubNvmlError("Not Supported")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list[type]:
        return [self._Proc]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        raise _StubNvmlError("No permission")


def test_pynvml_backend_maps_nvml_answers() -> None:
    backend = PynvmlBackend()
    backend._nvml = _StubPynvml()  # what init() sets after a successful nvmlInit
    facts = gpu_probe.gather(backend=_Initialised(backend), environ={"PATH": ""})
    assert facts.source == "nvml" and facts.driver_version == "550.54.15" and facts.cuda_driver == (12, 4)
    (h100,) = facts.gpus
    assert h100.name == "NVIDIA H100 80GB HBM3" and h100.cc == (9, 0) and not h100.mig_mode
    assert h100.memory_free == 84986691584
    assert [(p.pid, p.name, p.used_memory) for p in h100.processes] == [(4242, "", 2**30)]


class _Initialised(gpu_probe.NvmlBackend):
    """Delegates to a PynvmlBackend whose library is already loaded (skips the real dlopen)."""

    def __init__(self, inner: PynvmlBackend) -> None:
        self.inner = inner

    def init(self) -> None:
        pass

    def shutdown(self) -> None:
        self.inner.shutdown()

    def driver_version(self) -> str:
        return self.inner.driver_version()

    def cuda_driver_version(self) -> int | None:
        return self.inner.cuda_driver_version()

    def device_count(self) -> int:
        return self.inner.device_count()

    def device(self, index: int) -> gpu_probe.GpuDevice:
        return self.inner.device(index)
