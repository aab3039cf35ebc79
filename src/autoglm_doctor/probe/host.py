"""Host facts: container markers, GPU pass-through, /dev/shm, memory and disk.

Everything is read from files under a filesystem root (``/`` by default): tests and support
can point :func:`gather_from` at a folder laid out like a container (``.dockerenv``,
``proc/mounts``, ``proc/meminfo``, ``dev/nvidia0``...) and get real answers from it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoglm_doctor.gather_options import GatherOptions
    from autoglm_doctor.probe.weights import ModelFacts

_CGROUP_MARKERS = re.compile(r"docker|kubepods|containerd|libpod|lxc|podman|crio")
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


@dataclass(frozen=True, slots=True)
class DiskFacts:
    """Free space where something the deployment reads or writes lives."""

    path: str
    """The path asked about (model folder, HF cache...)."""
    role: str
    """``model``, ``hf-cache`` or ``cwd``."""
    measured: str
    """The nearest existing folder that was measured (the path itself when it exists)."""
    exists: bool = False
    """The path itself exists."""
    total: int | None = None
    """Bytes of the filesystem."""
    free: int | None = None
    """Bytes free for this user."""


@dataclass(frozen=True, slots=True)
class HostFacts:
    """The machine around the interpreter."""

    in_container: bool = False
    """Whether the probe found container markers."""
    container_markers: list[str] = field(default_factory=list)
    """What gave the container away (``/.dockerenv``, ``cgroup: kubepods``...)."""
    nvidia_visible_devices: str | None = None
    """``NVIDIA_VISIBLE_DEVICES`` (set by the NVIDIA container toolkit / CUDA images)."""
    cuda_version_env: str | None = None
    """``CUDA_VERSION`` (set by nvidia/cuda images: the image's CUDA toolkit)."""
    nvidia_device_nodes: list[str] = field(default_factory=list)
    """``/dev/nvidia*`` device nodes present (``nvidia0``, ``nvidiactl``, ``nvidia-uvm``)."""
    shm_size: int | None = None
    """Bytes of /dev/shm (from its mount options, else statvfs); None when absent."""
    mem_total: int | None = None
    """MemTotal of /proc/meminfo, bytes."""
    mem_available: int | None = None
    """MemAvailable of /proc/meminfo, bytes."""
    cgroup_memory_limit: int | None = None
    """The container's memory limit (cgroup v2 memory.max or v1 limit_in_bytes); None when unlimited."""
    cgroup_memory_used: int | None = None
    """Memory the cgroup already uses, bytes."""
    disks: list[DiskFacts] = field(default_factory=list)
    """Free disk where the model and caches live."""
    root: str = "/"
    """Filesystem root the facts were read from."""
    ports_in_use: list[int] = field(default_factory=list)
    """Ports a launch command listens on that something on this host already holds."""

    @property
    def gpu_device_nodes(self) -> list[str]:
        """Per-GPU nodes (``nvidia0``, ``nvidia1``...), without the control nodes."""
        return [n for n in self.nvidia_device_nodes if re.fullmatch(r"nvidia\d+", n)]

    @property
    def ram_available(self) -> int | None:
        """Memory a new process can use: MemAvailable, capped by the cgroup limit."""
        candidates = [self.mem_available] if self.mem_available is not None else []
        if self.cgroup_memory_limit is not None:
            candidates.append(max(0, self.cgroup_memory_limit - (self.cgroup_memory_used or 0)))
        return min(candidates) if candidates else None


def port_taken(port: int, host: str = "") -> bool:
    """Whether binding ``host:port`` fails because something holds it (as the server's own bind would).

    SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT is free, a listening one is taken. The
    socket is closed at once; nothing is sent or accepted.
    """
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _size(text: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kmgt]?)", text.strip().lower())
    if not match:
        return None
    multiplier: int = 1024 ** " kmgt".index(match.group(2) or " ")
    return int(match.group(1)) * multiplier


def container_markers(root: Path, environ: Mapping[str, str]) -> list[str]:
    """Signs that this is a container: marker files, cgroup paths, container runtimes' env vars."""
    found = [f"/{name}" for name in (".dockerenv", "run/.containerenv") if (root / name).exists()]
    cgroup = _CGROUP_MARKERS.search(_read(root / "proc/1/cgroup"))
    if cgroup:
        found.append(f"cgroup: {cgroup.group(0)}")
    if re.search(r"/(docker|containers)/containers/", _read(root / "proc/self/mountinfo")):
        found.append("mountinfo: container runtime files")
    if environ.get("container"):
        found.append(f"container={environ['container']}")
    if environ.get("KUBERNETES_SERVICE_HOST"):
        found.append("KUBERNETES_SERVICE_HOST")
    return found


def shm_size(root: Path) -> int | None:
    """Size of /dev/shm: the ``size=`` of its mount, else statvfs of the folder."""
    for line in _read(root / "proc/mounts").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "/dev/shm":
            for option in parts[3].split(","):
                if option.startswith("size="):
                    return _size(option[5:])
    folder = root / "dev/shm"
    if not folder.is_dir():
        return None
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return stat.f_blocks * stat.f_frsize


def meminfo(root: Path) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out = {}
    for line in _read(root / "proc/meminfo").splitlines():
        match = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if match:
            out[match.group(1)] = int(match.group(2)) * 1024
    return out


def cgroup_memory(root: Path) -> tuple[int | None, int | None]:
    """(limit, used) of the cgroup this process runs in; limit None when unlimited."""
    base = root / "sys/fs/cgroup"
    for limit_file, used_file in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        limit_text = _read(base / limit_file).strip()
        if not limit_text:
            continue
        used_text = _read(base / used_file).strip()
        used = int(used_text) if used_text.isdigit() else None
        if not limit_text.isdigit() or int(limit_text) >= _UNLIMITED:
            return None, used
        return int(limit_text), used
    return None, None


def disk_facts(path: Path, role: str) -> DiskFacts:
    """Free space of the filesystem holding ``path`` (or its nearest existing parent)."""
    path = path.expanduser()
    measured = path
    while not measured.exists() and measured != measured.parent:
        measured = measured.parent
    try:
        usage = shutil.disk_usage(measured)
    except OSError:
        return DiskFacts(path=str(path), role=role, measured=str(measured), exists=path.exists())
    return DiskFacts(
        path=str(path), role=role, measured=str(measured), exists=path.exists(), total=usage.total, free=usage.free
    )


def hf_cache(environ: Mapping[str, str]) -> Path:
    """Where huggingface_hub stores downloads (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache)."""
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"])
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]) / "hub"
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "huggingface" / "hub"


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or (os.sep in value and Path(value).expanduser().exists())


def disk_paths(
    options: GatherOptions | None, model: ModelFacts | None, environ: Mapping[str, str]
) -> list[tuple[Path, str]]:
    """The places whose free disk matters: the model folder, the HF cache, the working directory."""
    paths: list[tuple[Path, str]] = []
    if model is not None and model.path:
        paths.append((Path(model.path), "model"))
    elif options is not None and options.model and _looks_like_path(options.model):
        paths.append(((options.cwd / Path(options.model).expanduser()), "model"))
    elif environ.get("MODEL_WEIGHT_PATH"):
        paths.append((Path(environ["MODEL_WEIGHT_PATH"]), "model"))
    paths.append((hf_cache(environ), "hf-cache"))
    paths.append((options.cwd if options is not None else Path.cwd(), "cwd"))
    return paths


def gather_from(root: Path, environ: Mapping[str, str], paths: list[tuple[Path, str]]) -> HostFacts:
    """Host facts read from the filesystem under ``root``; disks measured at ``paths``."""
    markers = container_markers(root, environ)
    dev = root / "dev"
    nodes = sorted(p.name for p in dev.glob("nvidia*")) if dev.is_dir() else []
    mem = meminfo(root)
    limit, used = cgroup_memory(root)
    return HostFacts(
        in_container=bool(markers),
        container_markers=markers,
        nvidia_visible_devices=environ.get("NVIDIA_VISIBLE_DEVICES"),
        cuda_version_env=environ.get("CUDA_VERSION"),
        nvidia_device_nodes=nodes,
        shm_size=shm_size(root),
        mem_total=mem.get("MemTotal"),
        mem_available=mem.get("MemAvailable"),
        cgroup_memory_limit=limit,
        cgroup_memory_used=used,
        disks=[disk_facts(path, role) for path, role in paths],
        root=str(root),
    )


def gather(options: GatherOptions | None = None, model: ModelFacts | None = None) -> HostFacts:
    """Gather the host facts of this machine (root ``/``, this process's environment)."""
    return gather_from(Path("/"), os.environ, disk_paths(options, model, os.environ))
