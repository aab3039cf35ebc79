"""Reading: one snapshot or JSON report becomes a node name and its attribute values.

Raw JSON is read defensively (``dict.get`` chains): a file from an older or newer doctor, or a
half-written one, becomes a :class:`FileProblem`, never a crash.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoglm_doctor.safeio import RefusedFile, loads_json, read_bytes

SNAPSHOT_SCHEMA = "autoglm-doctor/snapshot@1"
REPORT_SCHEMA = "autoglm-doctor/report@1"

MAX_FILE_BYTES = 64 << 20
"""A snapshot is tens of kilobytes; anything this big is not one."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One property compared across nodes."""

    key: str
    """Stable key used in the JSON output."""
    label: str
    """What a person reads."""


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("python", "Python"),
    Attribute("driver", "NVIDIA driver"),
    Attribute("cuda", "CUDA (driver)"),
    Attribute("gpu_count", "GPU count"),
    Attribute("gpu_name", "GPU model"),
    Attribute("torch", "torch"),
    Attribute("torch_cuda", "torch CUDA build"),
    Attribute("transformers", "transformers"),
    Attribute("status", "check status"),
    Attribute("failing_checks", "failing checks"),
)
"""Compared attributes, in display order."""

ABSENT = "not installed"
"""Value of a package attribute when a snapshot shows the package is not installed."""
NO_GPU = "none"
"""Driver value of a snapshot whose GPU facts found no NVIDIA driver."""


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that could not be used."""

    file: str
    """The path as given."""
    error: str
    """Why, in words."""


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip()
    return text or None


def _first(data: Any, *paths: tuple[str, ...]) -> Any:
    for path in paths:
        value = _get(data, *path)
        if value not in (None, ""):
            return value
    return None


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _effective_versions(distributions: Any, wanted: tuple[str, ...]) -> dict[str, str | None]:
    """Version import would pick (lowest path_index) per wanted name; ABSENT when not installed."""
    if not isinstance(distributions, list):
        return dict.fromkeys(wanted)
    best: dict[str, tuple[int, str]] = {}
    for dist in distributions:
        name = dist.get("name") if isinstance(dist, dict) else None
        if not isinstance(name, str) or len(name) < 5:
            continue
        key = _canonical(name)
        if key not in wanted:
            continue
        index = dist.get("path_index")
        rank = index if isinstance(index, int) and not isinstance(index, bool) else 1 << 30
        version = _text(dist.get("version")) or "unknown"
        if key not in best or rank < best[key][0]:
            best[key] = (rank, version)
    return {name: best[name][1] if name in best else ABSENT for name in wanted}


def _gpu_list(gpu: dict[str, Any]) -> list[Any] | None:
    for key in ("gpus", "devices"):
        value = gpu.get(key)
        if isinstance(value, list):
            return value
    return None


def _cuda_version(value: Any) -> str | None:
    """``12.4`` from NVML's encoding (12040) or from text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1000:
        return f"{value // 1000}.{(value % 1000) // 10}"
    return _text(value)


def snapshot_values(data: dict[str, Any]) -> dict[str, str | None]:
    """Attribute values from a snapshot's raw JSON (keys read: see docs/fleet.md)."""
    values: dict[str, str | None] = {k.key: None for k in ATTRIBUTES}
    values["python"] = _text(_get(data, "python", "version"))
    torch = data.get("torch")
    versions = _effective_versions(data.get("distributions"), ("torch", "transformers"))
    if isinstance(torch, dict):
        values["torch"] = _text(torch.get("version")) or versions["torch"]
        values["torch_cuda"] = _text(torch.get("cuda")) or (
            f"rocm {torch['hip']}" if _text(torch.get("hip")) else "cpu"
        )
    elif "torch" in data and torch is None:
        values["torch"] = versions["torch"]
        values["torch_cuda"] = ABSENT if values["torch"] == ABSENT else None
    values["transformers"] = versions["transformers"]
    gpu = data.get("gpu")
    if isinstance(gpu, dict):
        devices = _gpu_list(gpu)
        count = _first(gpu, ("gpu_count",), ("count",), ("device_count",))
        if isinstance(count, int) and not isinstance(count, bool):
            values["gpu_count"] = str(count)
        elif devices is not None:
            values["gpu_count"] = str(len(devices))
        driver = _first(gpu, ("driver_version",), ("driver",), ("nvml", "driver_version"))
        values["driver"] = _text(driver)
        values["cuda"] = _cuda_version(
            _first(gpu, ("cuda_driver_version",), ("driver_cuda",), ("cuda_version",), ("max_cuda",), ("cuda",))
        )
        if values["driver"] is None and (gpu.get("nvml_error") or values["gpu_count"] == "0"):
            values["driver"] = NO_GPU
            values["gpu_count"] = values["gpu_count"] or "0"
        if devices:
            names = Counter(_text(d.get("name")) or "unknown" for d in devices if isinstance(d, dict))
            if names:
                values["gpu_name"] = " + ".join(
                    f"{n}× {name}" if len(names) > 1 else name for name, n in sorted(names.items())
                )
    return values


def report_values(data: dict[str, Any]) -> dict[str, str | None]:
    """Attribute values from a JSON report (``check --format json``)."""
    values: dict[str, str | None] = {k.key: None for k in ATTRIBUTES}
    values["python"] = _text(_get(data, "environment", "python"))
    status = _text(data.get("status"))
    values["status"] = status
    results = data.get("results")
    if isinstance(results, list):
        failing = sorted(
            str(r.get("id"))
            for r in results
            if isinstance(r, dict) and r.get("status") in ("fail", "error") and r.get("id") is not None
        )
        values["failing_checks"] = ", ".join(failing) if failing else "none"
    return values


def _hostname(data: dict[str, Any]) -> str | None:
    name = _first(data, ("hostname",), ("host", "hostname"), ("environment", "hostname"), ("host", "node"))
    return name if isinstance(name, str) and name.strip() else None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".json", ".snapshot", ".report"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def load_json(raw: bytes) -> Any:
    """Parse a snapshot or report (bounded in depth and number size, like every JSON the doctor reads)."""
    return loads_json(raw.decode("utf-8"))


def read_file(path: Path) -> tuple[str, str, dict[str, str | None]] | FileProblem:
    """(node name, kind, values) of one snapshot or report, or why it cannot be used."""
    shown = str(path)
    try:
        if path.is_dir():
            return FileProblem(shown, "is a folder")
        raw = read_bytes(path, "snapshot", MAX_FILE_BYTES)
    except RefusedFile as exc:
        return FileProblem(shown, f"{exc.strerror}: not read")
    except OSError as exc:
        return FileProblem(shown, f"cannot read: {exc.strerror or exc}")
    try:
        data = load_json(raw)
    except UnicodeDecodeError:
        return FileProblem(shown, "not UTF-8 text")
    except json.JSONDecodeError as exc:
        return FileProblem(shown, f"not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})")
    except ValueError as exc:  # nested too deeply, a number too long to read
        return FileProblem(shown, f"cannot be read: JSON {exc}")
    if not isinstance(data, dict):
        return FileProblem(shown, f"a JSON {type(data).__name__}, not a snapshot or report object")
    schema = data.get("schema")
    if schema == SNAPSHOT_SCHEMA:
        if not isinstance(data.get("python"), dict):
            return FileProblem(shown, "snapshot without python facts (truncated or hand-edited?)")
        kind, values = "snapshot", snapshot_values(data)
    elif schema == REPORT_SCHEMA:
        kind, values = "report", report_values(data)
    else:
        return FileProblem(
            shown,
            f"unknown schema {schema!r} (expected {SNAPSHOT_SCHEMA!r} or {REPORT_SCHEMA!r}; "
            "make one with `autoglm-doctor snapshot -o FILE`)",
        )
    return (_hostname(data) or _stem(path), kind, values)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to read: each path as given, a folder's ``*.json`` files (sorted) instead of the folder."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file()))
        else:
            out.append(path)
    return out
