"""Typed access to the GPU tables: cuda.yaml (driver, CUDA, torch wheels) and gpu_arch.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from autoglm_doctor import yamlpos
from autoglm_doctor.knowledge import load_table

CudaVersion = tuple[int, int]
"""A CUDA version as ``(major, minor)``."""

DriverVersion = tuple[int, ...]
"""An NVIDIA driver version as integers (``550.54.15`` -> ``(550, 54, 15)``)."""


def parse_cuda(text: str | None) -> CudaVersion | None:
    """``12.1``, ``12.1.105``, ``cu121`` or ``12010`` (the NVML integer) -> ``(12, 1)``; None otherwise."""
    if not text:
        return None
    text = str(text).strip()
    tag = re.fullmatch(r"cu(\d{2,3})", text)
    if tag:
        digits = tag.group(1)
        return int(digits[:-1]), int(digits[-1])
    if re.fullmatch(r"\d{4,5}", text):
        number = int(text)
        return number // 1000, (number % 1000) // 10
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def cuda_text(version: CudaVersion) -> str:
    """``(12, 1)`` -> ``12.1``."""
    return f"{version[0]}.{version[1]}"


def variant_of(version: CudaVersion) -> str:
    """``(12, 1)`` -> ``cu121``."""
    return f"cu{version[0]}{version[1]}"


def parse_driver(text: str | None) -> DriverVersion | None:
    """``550.54.15`` -> ``(550, 54, 15)``; None when the text is not a driver version."""
    if not text or not re.fullmatch(r"\d+(\.\d+)*", str(text).strip()):
        return None
    return tuple(int(part) for part in str(text).strip().split("."))


def parse_cc(text: str | None) -> tuple[int, int] | None:
    """``8.6`` -> ``(8, 6)``; None otherwise."""
    match = re.fullmatch(r"(\d+)\.(\d+)", str(text or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True, slots=True)
class ToolkitDriver:
    """The driver a CUDA minor release needs to run in full (Table 3 of the release notes)."""

    cuda: CudaVersion
    """The CUDA version."""
    linux: DriverVersion | None
    """Minimum Linux driver."""
    windows: DriverVersion | None
    """Minimum Windows driver (None: not tabulated)."""
    confidence: str
    """high, medium or low."""


@dataclass(frozen=True, slots=True)
class FamilyFloor:
    """Minor-version compatibility: the driver that runs any toolkit of one CUDA major."""

    major: int
    """CUDA major version."""
    linux: DriverVersion | None
    """Minimum Linux driver."""
    windows: DriverVersion | None
    """Minimum Windows driver (None: not tabulated)."""
    confidence: str
    """high, medium or low."""


@dataclass(frozen=True, slots=True)
class TorchCudaRelease:
    """One torch release line and its CUDA wheels."""

    line: str
    """``major.minor``, e.g. ``2.5``."""
    latest: str
    """Newest patch release of the line, e.g. ``2.5.1``."""
    variants: tuple[str, ...]
    """CUDA wheel variants on download.pytorch.org, e.g. ``cu118``."""
    pypi_default: str
    """Variant of the Linux x86_64 PyPI wheel (which has no +cuXYZ tag)."""
    confidence: str
    """high, medium or low."""

    @property
    def key(self) -> tuple[int, int]:
        """Sortable ``(major, minor)``."""
        major, minor = self.line.split(".")
        return int(major), int(minor)


@dataclass(frozen=True, slots=True)
class ArchList:
    """The GPU architectures one torch build variant contains."""

    archs: tuple[tuple[int, int], ...]
    """Compute capabilities with compiled kernels (cubins)."""
    ptx: bool
    """The newest arch also ships as PTX, which the driver JIT-compiles for newer GPUs."""
    confidence: str
    """high, medium or low."""

    def covers(self, cc: tuple[int, int]) -> bool:
        """A GPU of compute capability ``cc`` finds a kernel image in this build.

        A cubin for sm_XY runs on the same major with minor >= Y; PTX runs on any newer GPU.
        """
        if any(arch[0] == cc[0] and arch[1] <= cc[1] for arch in self.archs):
            return True
        return self.ptx and bool(self.archs) and max(self.archs) <= cc

    def describe(self) -> str:
        """``sm_50 sm_60 ... sm_90`` (+PTX)."""
        text = " ".join(f"sm_{major}{minor}" for major, minor in self.archs)
        return text + (" +PTX" if self.ptx else "")


@dataclass(frozen=True, slots=True)
class Architecture:
    """A compute capability's architecture."""

    cc: tuple[int, int]
    """Compute capability."""
    name: str
    """Architecture name (``Hopper``)."""
    examples: str
    """GPUs of that capability."""


def _driver(doc: yamlpos.Positioned, path: tuple[object, ...], value: object) -> DriverVersion | None:
    if value is None:
        return None
    parsed = parse_driver(str(value))
    if parsed is None:
        raise doc.error(path, f"{value!r} is not a driver version")
    return parsed


def _cuda(doc: yamlpos.Positioned, path: tuple[object, ...], value: object) -> CudaVersion:
    parsed = parse_cuda(str(value))
    if parsed is None:
        raise doc.error(path, f"{value!r} is not a CUDA version")
    return parsed


@cache
def index_url_pattern() -> str:
    """``https://download.pytorch.org/whl/{variant}``."""
    return str(load_table("cuda").data["index_url"])


def index_url(variant: str) -> str:
    """The wheel index of one torch build variant."""
    return index_url_pattern().format(variant=variant)


@cache
def toolkit_drivers() -> tuple[ToolkitDriver, ...]:
    """Every CUDA minor release with the driver it needs, newest first."""
    doc = load_table("cuda")
    rows = []
    for i, row in enumerate(doc.data["toolkit_drivers"]):
        where = ("toolkit_drivers", i)
        rows.append(
            ToolkitDriver(
                cuda=_cuda(doc, (*where, "cuda"), row["cuda"]),
                linux=_driver(doc, (*where, "linux"), row.get("linux")),
                windows=_driver(doc, (*where, "windows"), row.get("windows")),
                confidence=str(row.get("confidence", "high")),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.cuda, reverse=True))


@cache
def family_floors() -> dict[int, FamilyFloor]:
    """CUDA major -> the driver that runs every toolkit of that major (minor-version compatibility)."""
    doc = load_table("cuda")
    out = {}
    for i, row in enumerate(doc.data["minor_version_compatibility"]):
        where = ("minor_version_compatibility", i)
        floor = FamilyFloor(
            major=int(row["major"]),
            linux=_driver(doc, (*where, "linux"), row.get("linux")),
            windows=_driver(doc, (*where, "windows"), row.get("windows")),
            confidence=str(row.get("confidence", "high")),
        )
        out[floor.major] = floor
    return out


def toolkit_driver(cuda: CudaVersion) -> ToolkitDriver | None:
    """The row for one CUDA minor release, or None when the knowledge base lacks it."""
    return next((row for row in toolkit_drivers() if row.cuda == cuda), None)


def max_cuda_for_driver(driver: DriverVersion, *, windows: bool = False) -> ToolkitDriver | None:
    """The newest CUDA a driver runs in full, from the driver version alone (when NVML did not say)."""
    for row in toolkit_drivers():
        floor = row.windows if windows else row.linux
        if floor is not None and driver >= floor:
            return row
    return None


def driver_text(driver: DriverVersion | None) -> str:
    """``(580, 65, 6)`` -> ``580.65.06`` (NVIDIA pads the later parts to two digits); ``unknown`` for None."""
    if not driver:
        return "unknown"
    return str(driver[0]) + "".join(f".{part:02d}" for part in driver[1:])


@cache
def torch_cuda_releases() -> tuple[TorchCudaRelease, ...]:
    """Every torch release line with its CUDA wheels, newest first."""
    doc = load_table("cuda")
    rows = [
        TorchCudaRelease(
            line=str(row["torch"]),
            latest=str(row["latest"]),
            variants=tuple(str(v) for v in row["variants"]),
            pypi_default=str(row["pypi_default"]),
            confidence=str(row.get("confidence", "high")),
        )
        for row in doc.data["torch_releases"]
    ]
    return tuple(sorted(rows, key=lambda r: r.key, reverse=True))


def torch_cuda_release(line: str) -> TorchCudaRelease | None:
    """The row of one torch line (``2.5``), or None."""
    return next((r for r in torch_cuda_releases() if r.line == line), None)


def _line_key(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@cache
def _arch_rows() -> tuple[tuple[tuple[int, int], tuple[int, int], tuple[str, ...], ArchList], ...]:
    doc = load_table("cuda")
    rows = []
    for i, row in enumerate(doc.data["gpu_arch_lists"]):
        where = ("gpu_arch_lists", i)
        first, _, last = str(row["torch"]).partition("-")
        archs = []
        for j, arch in enumerate(row["archs"]):
            cc = parse_cc(str(arch))
            if cc is None:
                raise doc.error((*where, "archs", j), f"{arch!r} is not a compute capability")
            archs.append(cc)
        rows.append(
            (
                _line_key(first),
                _line_key(last or first),
                tuple(str(v) for v in row["variants"]),
                ArchList(archs=tuple(archs), ptx=bool(row.get("ptx")), confidence=str(row.get("confidence", "high"))),
            )
        )
    return tuple(rows)


def arch_list(torch_line: str, variant: str) -> ArchList | None:
    """The architectures of one torch line's build variant, or None when the knowledge base lacks it."""
    try:
        key = _line_key(torch_line)
    except ValueError:
        return None
    # Later rows are more specific (e.g. 2.11 cu128 after 2.8-2.10 cu128): the last match wins.
    found = None
    for first, last, variants, archs in _arch_rows():
        if first <= key <= last and variant in variants:
            found = archs
    return found


@cache
def architectures() -> dict[tuple[int, int], Architecture]:
    """Compute capability -> architecture."""
    doc = load_table("gpu_arch")
    out = {}
    for i, row in enumerate(doc.data["architectures"]):
        cc = parse_cc(str(row["cc"]))
        if cc is None:
            raise doc.error(("architectures", i, "cc"), f"{row['cc']!r} is not a compute capability")
        out[cc] = Architecture(cc=cc, name=str(row["arch"]), examples=str(row.get("examples") or ""))
    return out


def architecture_name(cc: tuple[int, int]) -> str:
    """``Hopper`` for 9.0; the nearest lower capability of the same major otherwise; ``unknown``."""
    table = architectures()
    if cc in table:
        return table[cc].name
    same_major = [k for k in table if k[0] == cc[0] and k <= cc]
    return table[max(same_major)].name if same_major else "unknown architecture"


@cache
def bf16_min_cc() -> tuple[int, int]:
    """The compute capability from which bfloat16 is native (8.0)."""
    doc = load_table("gpu_arch")
    cc = parse_cc(str(doc.data["bf16_min_cc"]))
    if cc is None:
        raise doc.error(("bf16_min_cc",), "bf16_min_cc must be a compute capability")
    return cc


def supports_bf16(cc: tuple[int, int]) -> bool:
    """The GPU computes in bfloat16 natively."""
    return cc >= bf16_min_cc()
