"""system.container and system.resources: the machine around the deployment."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

from autoglm_doctor.checks._served import read_launch, served_dtype, served_weight_bytes
from autoglm_doctor.checks.cuda import config_location, estimate_weights, gib, gpu_needed, target_gpus
from autoglm_doctor.context import CheckContext, config_value
from autoglm_doctor.knowledge import gpu as kb
from autoglm_doctor.knowledge.torch_choice import cpu_deployment, usable_gpus
from autoglm_doctor.model import Finding, Skip, error, info, warning
from autoglm_doctor.probe.snapshot import Snapshot
from autoglm_doctor.registry import check

GiB = 1024**3

SHM_MIN_BYTES = 1 * GiB
"""Below this, /dev/shm breaks multi-worker serving and DataLoader workers (Docker's default is 64 MiB)."""
DISK_MIN_FREE = 2 * GiB
"""Below this, caches, logs and temporary files start failing."""
CPU_LOAD_FACTOR = 1.2
"""RAM a CPU deployment needs per byte of weights (weights + activations + the Python process)."""

_NO_GPU_VALUES = ("", "void", "none")


@check(
    "system.container",
    title="Container: GPUs, /dev/shm and CUDA image",
    why=(
        "Inside a container the GPUs exist only when the runtime passes them in (--gpus / the NVIDIA runtime), "
        "Docker gives /dev/shm only 64 MiB (worker processes and DataLoader workers crash with 'bus error' or "
        "'No space left on device'), and the image's CUDA libraries can disagree with torch's."
    ),
    fix="Run the container with --gpus all and --shm-size=16g (or --ipc=host), on an image whose CUDA matches torch.",
)
def system_container(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Inside a container: the GPUs are passed through, /dev/shm is large enough, the image's CUDA fits torch's."""
    host = snap.host
    if host is None:
        raise Skip("host facts were not gathered")
    if not host.in_container:
        raise Skip("not running inside a container")
    markers = ", ".join(host.container_markers)
    needed = gpu_needed(snap, ctx)
    on_cpu = cpu_deployment(snap, ctx)
    visible_env = host.nvidia_visible_devices
    gpus_seen = bool(usable_gpus(snap.gpu))
    if not on_cpu and not host.gpu_device_nodes and not gpus_seen:
        if visible_env is None or visible_env.strip().lower() in _NO_GPU_VALUES:
            why = "no GPU was passed into this container (no /dev/nvidia0 device node"
            why += f", NVIDIA_VISIBLE_DEVICES={visible_env!r})" if visible_env is not None else ")"
        else:
            why = (
                f"NVIDIA_VISIBLE_DEVICES={visible_env!r} asks for GPUs but no /dev/nvidia0 device node exists: the "
                "container was not started with the NVIDIA runtime"
            )
        fix = (
            "docker run --gpus all ...   (Kubernetes: resources.limits nvidia.com/gpu: 1; "
            "needs nvidia-container-toolkit)"
        )
        if needed:
            yield error("system.container-no-gpu", f"{needed}, but {why}", fix=fix)
        else:
            yield info("system.container-no-gpu", f"{why}; the model will run on the CPU", fix=fix)
    if host.shm_size is None:
        yield info("system.shm-unknown", "/dev/shm is missing or its size is unknown")
    elif host.shm_size < SHM_MIN_BYTES:
        yield warning(
            "system.shm-small",
            f"/dev/shm is {host.shm_size / 2**20:.0f} MiB (Docker's default is 64 MiB): multi-worker serving, "
            "tokenizer/DataLoader worker processes and NCCL crash with 'bus error' or 'No space left on device' "
            "once they pass tensors through shared memory",
            observed=f"{host.shm_size / 2**20:.0f} MiB",
            expected=f">= {SHM_MIN_BYTES // 2**20} MiB",
            fix=(
                "docker run --shm-size=16g ...   (or --ipc=host; "
                "Kubernetes: an emptyDir with medium: Memory at /dev/shm)"
            ),
        )
    yield from _image_cuda(snap)
    nodes = ", ".join(f"/dev/{n}" for n in host.gpu_device_nodes) or "none"
    shm = f"{host.shm_size / 2**20:.0f} MiB" if host.shm_size is not None else "unknown"
    yield info("system.container", f"in a container ({markers}); GPU device nodes: {nodes}; /dev/shm: {shm}")


def _image_cuda(snap: Snapshot) -> Iterator[Finding]:
    host = snap.host
    image = kb.parse_cuda(host.cuda_version_env if host else None)
    if host is None or image is None:
        return
    torch_cuda = kb.parse_cuda(snap.torch.cuda) if snap.torch is not None else None
    drv = snap.gpu.cuda_driver if snap.gpu is not None else None
    if drv is not None and image[0] > drv[0]:
        yield warning(
            "system.image-cuda-newer-than-driver",
            f"the image is built on CUDA {host.cuda_version_env} (CUDA_VERSION) but the host's driver runs CUDA "
            f"<= {kb.cuda_text(drv)}: the image's CUDA libraries fail with 'CUDA driver version is insufficient "
            "for CUDA runtime version'",
            observed=f"CUDA_VERSION={host.cuda_version_env}",
            expected=f"CUDA <= {kb.cuda_text(drv)}",
            fix=(
                f"use an image built on CUDA {kb.cuda_text(drv)} or older "
                f"(e.g. nvidia/cuda:{kb.cuda_text(drv)}.0-runtime-ubuntu22.04), or upgrade the host's driver"
            ),
        )
    if torch_cuda is None or snap.torch is None:
        return
    torch_version = snap.torch.version
    if image[0] != torch_cuda[0]:
        yield warning(
            "system.image-cuda-mismatch",
            f"the image ships CUDA {host.cuda_version_env} (CUDA_VERSION) but torch {torch_version} "
            f"is built with CUDA {kb.cuda_text(torch_cuda)}: torch's pip wheel brings its own runtime, but the "
            "image's libraries on LD_LIBRARY_PATH can be loaded instead (undefined-symbol errors such as "
            "__nvJitLinkAddData) and extensions built in the image use the wrong CUDA",
            observed=f"CUDA_VERSION={host.cuda_version_env}",
            expected=f"CUDA {torch_cuda[0]}.x",
            fix=(
                f"base the image on CUDA {kb.cuda_text(torch_cuda)} "
                f"(e.g. nvidia/cuda:{kb.cuda_text(torch_cuda)}.0-runtime-ubuntu22.04) "
                "or install the torch build for the image's CUDA"
            ),
        )
    elif image != torch_cuda:
        yield info(
            "system.image-cuda-minor-mismatch",
            f"the image ships CUDA {host.cuda_version_env}, torch uses CUDA {kb.cuda_text(torch_cuda)} "
            "(same major: fine for running; extensions build with a warning)",
        )


@check(
    "system.resources",
    title="Host RAM and disk",
    why=(
        "transformers stages weights in host RAM while loading (all of them without device_map), a CPU "
        "deployment keeps them there, and a download or cache write onto a full disk fails half-way."
    ),
    fix="Load with device_map so shards go straight to the GPU, add RAM or swap, or free disk where weights live.",
)
def system_resources(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """Host RAM covers loading the model (on the CPU or staged for the GPU); disks have room for weights and caches."""
    host = snap.host
    if host is None:
        raise Skip("host facts were not gathered")
    weights = estimate_weights(snap)
    launch = read_launch(snap)
    if launch is not None and snap.model is not None:
        # vLLM and SGLang read the safetensors shards straight onto the GPU(s) at the served dtype:
        # no transformers staging in host RAM, so only the disk side applies
        dtype = served_dtype(launch, snap.model)[0]
        served = served_weight_bytes(snap.model, dtype)
        weights = (served, dtype, "served", True) if served else None
    ram = host.ram_available
    limit = " (container memory limit)" if host.cgroup_memory_limit is not None and ram != host.mem_available else ""
    on_cpu = cpu_deployment(snap, ctx) or (not usable_gpus(snap.gpu) and not gpu_needed(snap, ctx))
    if weights is not None and ram is not None:
        weight_bytes, dtype = weights[0], weights[1]
        if on_cpu:
            need = int(weight_bytes * CPU_LOAD_FACTOR)
            if need > ram:
                yield error(
                    "system.ram-insufficient",
                    f"the model runs on the CPU and needs ~{gib(need)} of RAM ({gib(weight_bytes)} of {dtype} "
                    f"weights + {int((CPU_LOAD_FACTOR - 1) * 100)}%), but {gib(ram)} is available{limit}: the "
                    "process is killed by the OOM killer while loading",
                    observed=f"{gib(ram)} available",
                    expected=f">= {gib(need)}",
                    fix="add RAM (or raise the container's memory limit), or run on a GPU",
                )
        elif launch is None and config_value(snap, "device_map") is None and weight_bytes > ram:
            gpus, _ = target_gpus(snap, ctx)
            device = f"cuda:{usable_gpus(snap.gpu).index(gpus[0])}" if gpus else "cuda:0"
            yield warning(
                "system.ram-staging",
                f"without device_map, transformers loads all {gib(weight_bytes)} of weights into host RAM before "
                f"moving them to the GPU, but {gib(ram)} is available{limit}: loading can be OOM-killed",
                observed=f"{gib(ram)} available",
                expected=f">= {gib(weight_bytes)}",
                fix=f"set device_map: {device} in the config so shards load straight onto the GPU",
                location=config_location(snap, "device_map"),
            )
    yield from _disks(snap, weights[0] if weights else None)
    total = f"{gib(host.mem_total)}" if host.mem_total is not None else "unknown"
    yield info("system.resources", f"RAM: {gib(ram) if ram is not None else 'unknown'} available of {total}{limit}")


def _disks(snap: Snapshot, weight_bytes: int | None) -> Iterator[Finding]:
    host = snap.host
    assert host is not None
    model = snap.model
    to_download = model is not None and bool(model.hub_id) and not model.exists
    for disk in host.disks:
        if disk.free is None:
            continue
        if to_download and disk.role == "hf-cache" and weight_bytes and disk.free < weight_bytes:
            yield error(
                "system.disk-full-for-download",
                f"the model {model.hub_id if model else ''} is not downloaded yet and needs ~{gib(weight_bytes)}, "
                f"but the Hugging Face cache {disk.path} has {gib(disk.free)} free: the download fails half-way",
                observed=f"{gib(disk.free)} free",
                expected=f">= {gib(weight_bytes)}",
                fix="free space there, or point the cache at a larger disk: export HF_HOME=/path/on/larger/disk",
            )
        elif disk.free < DISK_MIN_FREE:
            yield warning(
                "system.disk-low",
                f"only {gib(disk.free)} free on the disk holding {disk.path} ({disk.role}): cache writes, logs and "
                "temporary files will fail",
                observed=f"{gib(disk.free)} free at {disk.measured}",
                expected=f">= {gib(DISK_MIN_FREE)}",
                fix=f"free space on the filesystem of {disk.measured} (df -h {shlex.quote(disk.measured)})",
            )
        else:
            yield info("system.disk", f"{disk.role} {disk.path}: {gib(disk.free)} free")
