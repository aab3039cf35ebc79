"""system.container and system.resources: host facts read from fake filesystem roots, checks on snapshots."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.model import Severity, Status
from autoglm_doctor.probe import host as host_probe
from autoglm_doctor.probe.host import DiskFacts, HostFacts, gather_from
from autoglm_doctor.probe.snapshot import Snapshot
from tests.helpers.gpu import finding, gpu_facts, nine_b_model, run_check, snapshot

GiB = 1024**3


def container_root(
    tmp_path: Path,
    *,
    shm: str = "65536k",
    gpus: int = 1,
    mem_available_kb: int = 64 * 1024 * 1024,
    memory_max: str | None = None,
    dockerenv: bool = True,
) -> Path:
    """A folder laid out like the root of a Docker container."""
    root = tmp_path / "root"
    (root / "proc/1").mkdir(parents=True)
    (root / "dev/shm").mkdir(parents=True)
    if dockerenv:
        (root / ".dockerenv").write_text("")
    (root / "proc/mounts").write_text(
        "overlay / overlay rw,relatime,lowerdir=/var/lib/docker/overlay2/l/X 0 0\n"
        f"shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size={shm} 0 0\n"
    )
    (root / "proc/1/cgroup").write_text("0::/\n")
    (root / "proc/meminfo").write_text(
        f"MemTotal:       {128 * 1024 * 1024} kB\nMemFree:         1000 kB\nMemAvailable:   {mem_available_kb} kB\n"
    )
    for i in range(gpus):
        (root / f"dev/nvidia{i}").write_text("")
    if gpus:
        (root / "dev/nvidiactl").write_text("")
        (root / "dev/nvidia-uvm").write_text("")
    if memory_max is not None:
        (root / "sys/fs/cgroup").mkdir(parents=True)
        (root / "sys/fs/cgroup/memory.max").write_text(memory_max + "\n")
        (root / "sys/fs/cgroup/memory.current").write_text(str(2 * GiB) + "\n")
    return root


def test_container_layout_is_read_from_the_root(tmp_path: Path) -> None:
    root = container_root(tmp_path, gpus=2, memory_max=str(16 * GiB))
    facts = gather_from(root, {"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VERSION": "12.1.1"}, [(tmp_path, "cwd")])
    assert facts.in_container and facts.container_markers == ["/.dockerenv"]
    assert facts.gpu_device_nodes == ["nvidia0", "nvidia1"]
    assert "nvidiactl" in facts.nvidia_device_nodes
    assert facts.shm_size == 64 * 2**20
    assert facts.mem_available == 64 * GiB and facts.mem_total == 128 * GiB
    assert facts.cgroup_memory_limit == 16 * GiB and facts.ram_available == 14 * GiB  # limit - current
    assert facts.nvidia_visible_devices == "all" and facts.cuda_version_env == "12.1.1"
    (disk,) = facts.disks
    assert disk.exists and disk.free is not None and disk.free > 0


def test_cgroup_markers_and_runtime_env(tmp_path: Path) -> None:
    root = container_root(tmp_path, dockerenv=False)
    (root / "proc/1/cgroup").write_text("12:memory:/kubepods/burstable/pod1234/abcd\n")
    facts = gather_from(root, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, [])
    assert facts.in_container
    assert facts.container_markers == ["cgroup: kubepods", "KUBERNETES_SERVICE_HOST"]
    podman = gather_from(container_root(tmp_path / "p", dockerenv=False), {"container": "podman"}, [])
    assert podman.container_markers == ["container=podman"]


def test_bare_host_is_not_a_container(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "proc").mkdir(parents=True)
    (root / "proc/1").mkdir()
    (root / "proc/1/cgroup").write_text("0::/init.scope\n")
    facts = gather_from(root, {}, [])
    assert not facts.in_container and facts.shm_size is None and facts.mem_available is None
    res = run_check("system.container", snapshot(host=facts))
    assert res.status is Status.SKIP and "not running inside a container" in res.findings[0].message


def test_unlimited_cgroup_and_v1_limits(tmp_path: Path) -> None:
    root = container_root(tmp_path, memory_max="max")
    assert gather_from(root, {}, []).cgroup_memory_limit is None
    v1 = container_root(tmp_path / "v1")
    (v1 / "sys/fs/cgroup/memory").mkdir(parents=True)
    (v1 / "sys/fs/cgroup/memory/memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert gather_from(v1, {}, []).cgroup_memory_limit is None


def test_disk_facts_measure_the_nearest_existing_parent(tmp_path: Path) -> None:
    facts = host_probe.disk_facts(tmp_path / "not" / "yet" / "downloaded", "hf-cache")
    assert not facts.exists and facts.measured == str(tmp_path) and facts.free is not None


def test_disk_paths_cover_model_hf_cache_and_cwd(tmp_path: Path) -> None:
    paths = host_probe.disk_paths(
        GatherOptions(model="./weights", cwd=tmp_path), None, {"HF_HOME": str(tmp_path / "hf")}
    )
    assert paths == [(tmp_path / "weights", "model"), (tmp_path / "hf" / "hub", "hf-cache"), (tmp_path, "cwd")]
    by_model = host_probe.disk_paths(None, nine_b_model(), {"HF_HUB_CACHE": "/cache"})
    assert by_model[:2] == [(Path("/models/AutoGLM-Phone-9B"), "model"), (Path("/cache"), "hf-cache")]


def test_real_host_facts_of_this_machine() -> None:
    facts = host_probe.gather(GatherOptions(cwd=Path.cwd()))
    assert facts.mem_total is not None and facts.mem_available is not None
    assert [d.role for d in facts.disks] == ["hf-cache", "cwd"]
    assert facts.in_container == (Path("/.dockerenv").exists() or bool(facts.container_markers))


# --- system.container -----------------------------------------------------------------------


def test_small_shm_warns_with_the_docker_fix(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path), {"NVIDIA_VISIBLE_DEVICES": "all"}, [])
    res = run_check(
        "system.container", snapshot(host=host, gpu=gpu_facts("h100-80gb"), torch="2.5.1+cu124", cuda="12.4")
    )
    assert res.status is Status.WARN
    found = finding(res, "system.shm-small")
    assert found.observed == "64 MiB" and "--shm-size=16g" in found.fix and "--ipc=host" in found.fix


def test_large_shm_passes(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path, shm="16g"), {}, [])
    res = run_check("system.container", snapshot(host=host, gpu=gpu_facts("h100-80gb")))
    assert res.status is Status.PASS
    assert "/dev/nvidia0" in finding(res, "system.container").message


def test_container_without_gpus_when_config_needs_one(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path, gpus=0, shm="8g"), {}, [])
    snap = snapshot(host=host, gpu=gpu_facts("no-driver"), torch="2.5.1+cu124", cuda="12.4", config={"device": "cuda"})
    res = run_check("system.container", snap)
    assert res.status is Status.FAIL
    found = finding(res, "system.container-no-gpu")
    assert "no GPU was passed into this container" in found.message and "--gpus all" in found.fix


def test_nvidia_visible_devices_without_the_runtime(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path, gpus=0, shm="8g"), {"NVIDIA_VISIBLE_DEVICES": "all"}, [])
    res = run_check("system.container", snapshot(host=host, gpu=gpu_facts("no-driver"), torch="2.5.1+cpu"))
    found = finding(res, "system.container-no-gpu")
    assert found.severity is Severity.INFO and "not started with the NVIDIA runtime" in found.message


def test_image_cuda_against_torch_and_driver(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path, shm="8g"), {"CUDA_VERSION": "11.8.0"}, [])
    res = run_check(
        "system.container", snapshot(host=host, gpu=gpu_facts("h100-80gb"), torch="2.1.2+cu121", cuda="12.1")
    )
    found = finding(res, "system.image-cuda-mismatch")
    assert "CUDA 11.8.0" in found.message and "nvidia/cuda:12.1.0-runtime-ubuntu22.04" in found.fix
    newer = gather_from(container_root(tmp_path / "n", shm="8g"), {"CUDA_VERSION": "13.0.1"}, [])
    res = run_check(
        "system.container", snapshot(host=newer, gpu=gpu_facts("h100-80gb"), torch="2.9.1+cu130", cuda="13.0")
    )
    assert "CUDA <= 12.4" in finding(res, "system.image-cuda-newer-than-driver").message


# --- system.resources -----------------------------------------------------------------------


def _host(ram_gib: float, disks: list[DiskFacts] | None = None) -> HostFacts:
    return HostFacts(mem_total=int(128 * GiB), mem_available=int(ram_gib * GiB), disks=disks or [])


def test_cpu_deployment_without_enough_ram() -> None:
    snap = snapshot(host=_host(16), config={"device": "cpu", "torch_dtype": "float32"}, model=nine_b_model())
    res = run_check("system.resources", snap)
    assert res.status is Status.FAIL
    found = finding(res, "system.ram-insufficient")
    assert "35.0 GiB of float32 weights" in found.message and found.observed == "16.0 GiB available"


def test_container_memory_limit_is_what_counts(tmp_path: Path) -> None:
    host = gather_from(container_root(tmp_path, memory_max=str(12 * GiB)), {}, [])
    snap = snapshot(host=host, config={"device": "cpu", "torch_dtype": "bfloat16"}, model=nine_b_model())
    found = finding(run_check("system.resources", snap), "system.ram-insufficient")
    assert "(container memory limit)" in found.message and "10.0 GiB is available" in found.message


def test_gpu_staging_without_device_map_warns() -> None:
    snap = snapshot(
        host=_host(12),
        gpu=gpu_facts("h100-80gb"),
        torch="2.5.1+cu124",
        config={"torch_dtype": "bfloat16", "device": "cuda"},
        model=nine_b_model(),
    )
    res = run_check("system.resources", snap)
    assert res.status is Status.WARN
    assert (
        finding(res, "system.ram-staging").fix
        == "set device_map: cuda:0 in the config so shards load straight onto the GPU"
    )
    with_map = snapshot(
        host=_host(12),
        gpu=gpu_facts("h100-80gb"),
        config={"torch_dtype": "bfloat16", "device_map": "cuda:0"},
        model=nine_b_model(),
    )
    assert run_check("system.resources", with_map).status is Status.PASS


def test_download_onto_a_full_disk_fails() -> None:
    disks = [
        DiskFacts(
            path="/root/.cache/huggingface/hub",
            role="hf-cache",
            measured="/root",
            exists=True,
            total=100 * GiB,
            free=5 * GiB,
        )
    ]
    model = nine_b_model(path="", exists=False, hub_id="zai-org/AutoGLM-Phone-9B")
    snap = snapshot(host=_host(64, disks), config={"torch_dtype": "bfloat16"}, model=model)
    res = run_check("system.resources", snap)
    found = finding(res, "system.disk-full-for-download")
    assert res.status is Status.FAIL and "zai-org/AutoGLM-Phone-9B" in found.message and "HF_HOME" in found.fix


def test_nearly_full_disk_warns() -> None:
    disks = [DiskFacts(path="/srv/app", role="cwd", measured="/srv/app", exists=True, total=100 * GiB, free=GiB // 2)]
    res = run_check("system.resources", snapshot(host=_host(64, disks)))
    assert res.status is Status.WARN
    assert finding(res, "system.disk-low").fix == "free space on the filesystem of /srv/app (df -h /srv/app)"


def test_resources_pass_with_numbers() -> None:
    disks = [DiskFacts(path="/srv", role="cwd", measured="/srv", exists=True, total=100 * GiB, free=50 * GiB)]
    res = run_check("system.resources", snapshot(host=_host(64, disks), config={"device": "cpu"}, model=nine_b_model()))
    assert res.status is Status.PASS
    assert "64.0 GiB available of 128.0 GiB" in finding(res, "system.resources").message


def test_host_facts_round_trip(tmp_path: Path) -> None:
    host = gather_from(
        container_root(tmp_path, memory_max=str(8 * GiB)), {"CUDA_VERSION": "12.4.1"}, [(tmp_path, "cwd")]
    )
    snap = snapshot(host=host)
    assert Snapshot.from_dict(__import__("json").loads(snap.to_json())).host == host


@pytest.mark.skipif(os.name != "posix", reason="statvfs fallback is POSIX")
def test_shm_size_falls_back_to_statvfs(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "dev/shm").mkdir(parents=True)
    size = host_probe.shm_size(root)
    assert size is not None and size > 0
    assert dataclasses.replace(_host(1), shm_size=size).shm_size == size
