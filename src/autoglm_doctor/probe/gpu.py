"""GPU facts: NVIDIA driver, visible GPUs and the CUDA toolkit.

NVML (through pynvml, from nvidia-ml-py) is read behind a small backend interface,
:class:`NvmlBackend`: :class:`PynvmlBackend` talks to the real driver, :class:`FixtureBackend`
replays a JSON description of a GPU host (tests, bug reports, support). Setting the
environment variable ``AUTOGLM_DOCTOR_NVML_FIXTURE=path.json`` makes :func:`gather` use the
fixture instead of the driver: a testing and support hook, never needed in normal use.

No NVML library (no driver) is a fact (:attr:`GpuFacts.nvml_error`), not an error.
``nvidia-smi`` runs only when NVML failed (as a fallback) and ``nvcc --version`` only when
an nvcc is found; both with a short timeout, in their own process group, so a hung tool
cannot hang the doctor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoglm_doctor.gather_options import GatherOptions

NVML_FIXTURE_ENV = "AUTOGLM_DOCTOR_NVML_FIXTURE"
"""Testing/support hook: a JSON file describing a GPU host, replayed instead of the real NVML."""

TOOL_TIMEOUT_S = 3.0
"""Seconds nvidia-smi and nvcc may take; a healthy one answers in well under a second."""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding memory on a GPU."""

    pid: int
    """Process id (in the host's PID namespace; inside a container it may not be visible)."""
    name: str = ""
    """Process name, when NVML or /proc could tell."""
    used_memory: int | None = None
    """Bytes it holds; None when the driver does not say (Windows WDDM, some containers)."""


@dataclass(frozen=True, slots=True)
class MigDevice:
    """A MIG instance of a GPU in MIG mode: CUDA sees these, not the whole GPU."""

    uuid: str
    """``MIG-...`` UUID (printed shortened only)."""
    name: str = ""
    """Profile name as NVML reports it, e.g. ``NVIDIA A100-SXM4-40GB MIG 3g.20gb``."""
    memory_total: int = 0
    """Bytes of memory of the instance."""
    memory_free: int = 0
    """Bytes free on the instance."""


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """One physical GPU as NVML numbers it."""

    index: int
    """NVML index (the order of ``nvidia-smi``)."""
    name: str
    """Marketing name, e.g. ``NVIDIA H100 80GB HBM3``."""
    uuid: str = ""
    """``GPU-...`` UUID; stored whole, printed shortened (see :func:`short_uuid`)."""
    compute_capability: str = ""
    """``major.minor``, e.g. ``9.0``; empty when unknown."""
    memory_total: int = 0
    """Bytes of memory."""
    memory_free: int = 0
    """Bytes free when the facts were gathered."""
    mig_mode: bool = False
    """MIG mode is enabled (CUDA then sees MIG instances only)."""
    mig_devices: list[MigDevice] = field(default_factory=list)
    """The MIG instances, when in MIG mode."""
    processes: list[GpuProcess] = field(default_factory=list)
    """Compute processes holding memory on it."""

    @property
    def cc(self) -> tuple[int, int] | None:
        """Compute capability as ``(major, minor)``."""
        match = re.fullmatch(r"(\d+)\.(\d+)", self.compute_capability)
        return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True, slots=True)
class GpuFacts:
    """What the host's GPU stack looks like."""

    nvml_error: str = ""
    """Why NVML could not be used (no library, no driver...); empty when it worked."""
    source: str = ""
    """Where the GPU list came from: ``nvml``, ``nvidia-smi`` or ``fixture <file>``."""
    driver_version: str = ""
    """Kernel driver version, e.g. ``550.54.15``; empty when unknown."""
    cuda_driver_version: int | None = None
    """Newest CUDA the driver runs, as NVML encodes it (1000*major + 10*minor, e.g. 12040)."""
    gpus: list[GpuDevice] = field(default_factory=list)
    """Every GPU the driver sees, hidden ones included."""
    cuda_visible_devices: str | None = None
    """``CUDA_VISIBLE_DEVICES`` as set (None: unset, every GPU visible)."""
    visible: list[int] = field(default_factory=list)
    """NVML indexes of the GPUs CUDA will see, in CUDA's order (cuda:0 first)."""
    visible_problems: list[str] = field(default_factory=list)
    """Entries of CUDA_VISIBLE_DEVICES that name no GPU (CUDA ignores them and all after)."""
    nvidia_smi_path: str = ""
    """nvidia-smi that was run (only when NVML failed)."""
    nvidia_smi_error: str = ""
    """Why nvidia-smi gave no answer (timeout, driver error text)."""
    nvcc_path: str = ""
    """nvcc that was found, if any."""
    nvcc_version: str = ""
    """CUDA version of that nvcc, e.g. ``12.1``."""
    nvcc_error: str = ""
    """Why nvcc gave no version."""

    def visible_gpus(self) -> list[GpuDevice]:
        """The GPUs CUDA will see, in CUDA's order."""
        by_index = {gpu.index: gpu for gpu in self.gpus}
        return [by_index[i] for i in self.visible if i in by_index]

    @property
    def cuda_driver(self) -> tuple[int, int] | None:
        """The driver's CUDA as ``(major, minor)``."""
        if not self.cuda_driver_version:
            return None
        return self.cuda_driver_version // 1000, (self.cuda_driver_version % 1000) // 10


def short_uuid(uuid: str) -> str:
    """A UUID shortened for reports: ``GPU-1a2b3c4d…`` (the rest is never printed)."""
    if not uuid:
        return ""
    prefix, sep, rest = uuid.partition("-")
    if not sep:
        return uuid[:8] + "…"
    return f"{prefix}-{rest[:8]}…"


class NvmlUnavailable(Exception):  # noqa: N818 - a fact about the host, reported not raised
    """NVML cannot be used here; the message says why (it becomes GpuFacts.nvml_error)."""


class NvmlBackend(ABC):
    """The few NVML queries the doctor makes. ``init`` first; ``shutdown`` last."""

    source = "nvml"

    @abstractmethod
    def init(self) -> None:
        """Open NVML; raises :class:`NvmlUnavailable` with the reason when it cannot."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook; most backends have nothing to close
        """Close NVML."""

    @abstractmethod
    def driver_version(self) -> str:
        """Kernel driver version string."""

    @abstractmethod
    def cuda_driver_version(self) -> int | None:
        """nvmlSystemGetCudaDriverVersion: 1000*major + 10*minor."""

    @abstractmethod
    def device_count(self) -> int:
        """Number of GPUs."""

    @abstractmethod
    def device(self, index: int) -> GpuDevice:
        """Everything about GPU ``index``."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class PynvmlBackend(NvmlBackend):
    """The real NVML, through pynvml. Each optional query failing leaves its field empty."""

    def __init__(self) -> None:
        self._nvml: Any = None

    def init(self) -> None:
        """Load the library and initialise NVML (fast failure when there is no driver)."""
        if sys.platform.startswith("linux"):
            # Importing pynvml costs ~100 ms; a missing library is known in well under 1 ms.
            import ctypes

            try:
                ctypes.CDLL("libnvidia-ml.so.1")
            except OSError as exc:
                raise NvmlUnavailable(f"NVML Shared Library Not Found ({exc})") from None
        try:
            import pynvml
        except ImportError as exc:
            raise NvmlUnavailable(f"pynvml (nvidia-ml-py) is not installed: {exc}") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(str(exc) or type(exc).__name__) from None
        except OSError as exc:
            raise NvmlUnavailable(f"NVML could not be loaded: {exc}") from None
        self._nvml = pynvml

    def shutdown(self) -> None:
        """Close NVML; errors on the way out do not matter."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass

    def driver_version(self) -> str:
        """Kernel driver version string."""
        return _text(self._nvml.nvmlSystemGetDriverVersion())

    def cuda_driver_version(self) -> int | None:
        """The driver's CUDA integer."""
        try:
            return int(self._nvml.nvmlSystemGetCudaDriverVersion())
        except self._nvml.NVMLError:
            return None

    def device_count(self) -> int:
        """Number of GPUs."""
        return int(self._nvml.nvmlDeviceGetCount())

    def _try(self, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except self._nvml.NVMLError:
            return None

    def device(self, index: int) -> GpuDevice:
        """Everything about GPU ``index``."""
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        cc = self._try(nvml.nvmlDeviceGetCudaComputeCapability, handle)
        memory = self._try(nvml.nvmlDeviceGetMemoryInfo, handle)
        mig = self._try(nvml.nvmlDeviceGetMigMode, handle)
        mig_on = bool(mig and mig[0] == nvml.NVML_DEVICE_MIG_ENABLE)
        return GpuDevice(
            index=index,
            name=_text(self._try(nvml.nvmlDeviceGetName, handle) or "unknown GPU"),
            uuid=_text(self._try(nvml.nvmlDeviceGetUUID, handle) or ""),
            compute_capability=f"{cc[0]}.{cc[1]}" if cc else "",
            memory_total=int(memory.total) if memory else 0,
            memory_free=int(memory.free) if memory else 0,
            mig_mode=mig_on,
            mig_devices=self._mig_devices(handle) if mig_on else [],
            processes=self._processes(handle),
        )

    def _mig_devices(self, handle: Any) -> list[MigDevice]:
        nvml = self._nvml
        out = []
        for i in range(self._try(nvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
            mig = self._try(nvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, i)
            if mig is None:
                continue
            memory = self._try(nvml.nvmlDeviceGetMemoryInfo, mig)
            out.append(
                MigDevice(
                    uuid=_text(self._try(nvml.nvmlDeviceGetUUID, mig) or ""),
                    name=_text(self._try(nvml.nvmlDeviceGetName, mig) or ""),
                    memory_total=int(memory.total) if memory else 0,
                    memory_free=int(memory.free) if memory else 0,
                )
            )
        return out

    def _processes(self, handle: Any) -> list[GpuProcess]:
        nvml = self._nvml
        out = []
        for proc in self._try(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []:
            used = getattr(proc, "usedGpuMemory", None)
            name = self._try(nvml.nvmlSystemGetProcessName, proc.pid)
            out.append(
                GpuProcess(
                    pid=int(proc.pid),
                    name=_text(name) if name else "",
                    used_memory=int(used) if isinstance(used, int) else None,
                )
            )
        return out


class FixtureBackend(NvmlBackend):
    """A GPU host replayed from JSON (``tests/fixtures/gpu/*.json``): same answers as NVML would give.

    The file holds ``nvml_error`` (a host without a driver) or ``driver_version``,
    ``cuda_driver_version`` and ``devices``: objects with the fields of :class:`GpuDevice`
    (without ``index``).
    """

    def __init__(self, data: Mapping[str, Any], name: str = "fixture") -> None:
        self._data = data
        self.source = f"fixture {name}"

    @classmethod
    def from_file(cls, path: Path) -> FixtureBackend:
        """Load a fixture file; an unreadable one is reported as the NVML error."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            data = {"nvml_error": f"{NVML_FIXTURE_ENV}={path} is unreadable: {exc}"}
        if not isinstance(data, dict):
            data = {"nvml_error": f"{NVML_FIXTURE_ENV}={path} is not a JSON object"}
        return cls(data, path.name)

    def init(self) -> None:
        """Fail the way the described host fails, if it does."""
        error = self._data.get("nvml_error")
        if error:
            raise NvmlUnavailable(str(error))

    def driver_version(self) -> str:
        """Kernel driver version string."""
        return str(self._data.get("driver_version", ""))

    def cuda_driver_version(self) -> int | None:
        """The driver's CUDA integer."""
        value = self._data.get("cuda_driver_version")
        return int(value) if value is not None else None

    def device_count(self) -> int:
        """Number of GPUs."""
        return len(self._data.get("devices", []))

    def device(self, index: int) -> GpuDevice:
        """GPU ``index`` as described."""
        from autoglm_doctor.serde import from_data

        raw = dict(self._data["devices"][index])
        raw["index"] = index
        return from_data(GpuDevice, raw)


def default_backend(environ: Mapping[str, str]) -> NvmlBackend:
    """The fixture named by ``AUTOGLM_DOCTOR_NVML_FIXTURE``, else the real NVML."""
    fixture = environ.get(NVML_FIXTURE_ENV)
    if fixture:
        return FixtureBackend.from_file(Path(fixture))
    return PynvmlBackend()


@dataclass(frozen=True, slots=True)
class _NvmlRead:
    """What one NVML session read (or the error that ended it)."""

    error: str = ""
    driver: str = ""
    cuda: int | None = None
    gpus: list[GpuDevice] = field(default_factory=list)


def read_nvml(backend: NvmlBackend) -> _NvmlRead:
    """Ask the backend everything; any NVML failure becomes the error text."""
    try:
        backend.init()
    except NvmlUnavailable as exc:
        return _NvmlRead(error=str(exc) or "NVML is unavailable")
    try:
        driver = backend.driver_version()
        cuda = backend.cuda_driver_version()
        gpus = [backend.device(i) for i in range(backend.device_count())]
    except Exception as exc:  # noqa: BLE001 - a broken driver is a fact to report, never a crash
        return _NvmlRead(error=f"NVML failed: {type(exc).__name__}: {exc}")
    finally:
        backend.shutdown()
    return _NvmlRead(driver=driver, cuda=cuda, gpus=gpus)


def resolve_visible(value: str | None, gpus: list[GpuDevice]) -> tuple[list[int], list[str]]:
    """CUDA_VISIBLE_DEVICES -> (NVML indexes in CUDA order, problems), following CUDA's rules.

    Entries are indexes, ``GPU-`` UUID prefixes or ``MIG-`` UUIDs. The first entry that names
    no GPU (or repeats one) ends the list: CUDA ignores it and everything after it. An empty
    value hides every GPU.
    """
    if value is None:
        return [gpu.index for gpu in gpus], []
    chosen: list[int] = []
    entries = [entry.strip() for entry in value.split(",")]
    if entries == [""]:
        return [], []
    for position, entry in enumerate(entries):
        index = _match_entry(entry, gpus)
        if index is None or index in chosen:
            ignored = entries[position:]
            why = "repeats a GPU" if index is not None else "names no GPU on this host"
            return chosen, [
                f"entry {entry!r} {why} (GPUs: {_describe_indexes(gpus)}); CUDA ignores "
                f"{', '.join(repr(e) for e in ignored)}"
            ]
        chosen.append(index)
    return chosen, []


def _describe_indexes(gpus: list[GpuDevice]) -> str:
    if not gpus:
        return "none"
    return ", ".join(f"{gpu.index}={gpu.name}" for gpu in gpus)


def _match_entry(entry: str, gpus: list[GpuDevice]) -> int | None:
    if re.fullmatch(r"\d+", entry):
        number = int(entry)
        return number if any(gpu.index == number for gpu in gpus) else None
    if entry.startswith("MIG-"):
        for gpu in gpus:
            if any(mig.uuid == entry for mig in gpu.mig_devices):
                return gpu.index
        return None
    if entry.startswith("GPU-") and len(entry) > 4:
        matches = [gpu.index for gpu in gpus if gpu.uuid.startswith(entry)]
        return matches[0] if len(matches) == 1 else None
    return None


@dataclass(frozen=True, slots=True)
class ToolRun:
    """The outcome of running a tool with a timeout."""

    stdout: str = ""
    """What it printed."""
    error: str = ""
    """Why it gave no usable answer; empty when it exited 0."""


def run_tool(argv: list[str], timeout: float = TOOL_TIMEOUT_S, env: Mapping[str, str] | None = None) -> ToolRun:
    """Run a tool through :mod:`autoglm_doctor.procs`: own process group, one deadline, output capped."""
    from autoglm_doctor import procs

    try:
        done = procs.run(argv, timeout=timeout, env=env, cap=TOOL_OUTPUT_CAP_BYTES)
    except OSError as exc:
        return ToolRun(error=f"cannot run {argv[0]}: {exc.strerror or exc}")
    if done.timed_out:
        return ToolRun(error=f"{Path(argv[0]).name} did not answer within {timeout:g} s (killed)")
    if done.truncated:
        return ToolRun(error=f"{Path(argv[0]).name} printed more than {TOOL_OUTPUT_CAP_BYTES >> 20} MiB (stopped)")
    stdout = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        lines = (done.stderr.decode("utf-8", "replace") + "\n" + stdout).strip().splitlines()
        detail = lines[0].strip() if lines else ""
        return ToolRun(stdout=stdout, error=f"exit status {done.returncode}" + (f": {detail}" if detail else ""))
    return ToolRun(stdout=stdout)


TOOL_OUTPUT_CAP_BYTES = 4 << 20
"""The most of nvidia-smi's or nvcc's output read (a 16-GPU query is a few KiB)."""


_SMI_FIELDS = "index,name,uuid,driver_version,memory.total,memory.free,compute_cap"


def parse_nvidia_smi(text: str) -> tuple[str, list[GpuDevice]]:
    """Parse ``nvidia-smi --query-gpu=<_SMI_FIELDS> --format=csv,noheader,nounits`` (MiB)."""
    driver = ""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 7 or not parts[0].isdigit():
            continue
        index, name, uuid, driver, total, free, cc = parts
        gpus.append(
            GpuDevice(
                index=int(index),
                name=name,
                uuid=uuid,
                compute_capability=cc if re.fullmatch(r"\d+\.\d+", cc) else "",
                memory_total=int(total) * 2**20 if total.isdigit() else 0,
                memory_free=int(free) * 2**20 if free.isdigit() else 0,
            )
        )
    return driver, gpus


_NVCC_RELEASE = re.compile(r"release (\d+\.\d+)")


def find_nvcc(environ: Mapping[str, str]) -> str:
    """The nvcc a build would use: PATH first, then CUDA_HOME / CUDA_PATH, then /usr/local/cuda."""
    found = shutil.which("nvcc", path=environ.get("PATH", os.defpath))
    if found:
        return found
    for home in (environ.get("CUDA_HOME"), environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidate = Path(home) / "bin" / ("nvcc.exe" if os.name == "nt" else "nvcc")
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return ""


def gather(
    options: GatherOptions | None = None,
    *,
    backend: NvmlBackend | None = None,
    environ: Mapping[str, str] | None = None,
) -> GpuFacts:
    """Gather the GPU facts: NVML (or the fixture), CUDA_VISIBLE_DEVICES, nvidia-smi fallback, nvcc."""
    env = os.environ if environ is None else environ
    chosen = backend or default_backend(env)
    nvml = read_nvml(chosen)
    source = chosen.source if not nvml.error else ""
    driver, gpus = nvml.driver, nvml.gpus
    smi_path = smi_error = ""
    if nvml.error:
        smi_path = shutil.which("nvidia-smi", path=env.get("PATH", os.defpath)) or ""
        if smi_path:
            run = run_tool([smi_path, f"--query-gpu={_SMI_FIELDS}", "--format=csv,noheader,nounits"], env=env)
            smi_error = run.error
            if not run.error:
                driver, gpus = parse_nvidia_smi(run.stdout)
                source = "nvidia-smi" if gpus else ""
    visible_env = env.get("CUDA_VISIBLE_DEVICES")
    visible, problems = resolve_visible(visible_env, gpus)
    nvcc_path = find_nvcc(env)
    nvcc_version = nvcc_error = ""
    if nvcc_path:
        run = run_tool([nvcc_path, "--version"], env=env)
        match = _NVCC_RELEASE.search(run.stdout)
        nvcc_version = match.group(1) if match else ""
        nvcc_error = run.error or ("" if match else "nvcc --version printed no 'release X.Y'")
    return GpuFacts(
        nvml_error=nvml.error,
        source=source,
        driver_version=driver,
        cuda_driver_version=nvml.cuda,
        gpus=gpus,
        cuda_visible_devices=visible_env,
        visible=visible,
        visible_problems=problems,
        nvidia_smi_path=smi_path,
        nvidia_smi_error=smi_error,
        nvcc_path=nvcc_path,
        nvcc_version=nvcc_version,
        nvcc_error=nvcc_error,
    )
