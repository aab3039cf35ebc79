"""Generate fleets of node snapshots (real snapshot data of this machine, with GPU facts a node would have).

Shared by tests/test_fleet_*.py and benchmarks/bench_fleet.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from autoglm_doctor.probe.collect import environment, run_probe, snapshot_from_probe
from autoglm_doctor.redact import snapshot_json

BASE_DRIVER = "550.54.15"
BASE_CUDA = 12040  # NVML's encoding of CUDA 12.4
GPU_NAME = "NVIDIA H100 80GB HBM3"

_BASE: dict[str, Any] | None = None


def gpu_facts(driver: str = BASE_DRIVER, cuda: int = BASE_CUDA, count: int = 8) -> dict[str, Any]:
    """GPU facts as a node with NVIDIA GPUs reports them (fields the fleet command reads)."""
    return {
        "nvml_error": "",
        "driver_version": driver,
        "cuda_driver_version": cuda,
        "gpus": [
            {"index": i, "name": GPU_NAME, "compute_capability": "9.0", "memory_total": 85899345920}
            for i in range(count)
        ],
    }


def base_snapshot() -> dict[str, Any]:
    """A real snapshot of this machine (gathered once), plus GPU facts."""
    global _BASE
    if _BASE is None:
        # The interpreter probe only: the host-side areas are not what the fleet tests are about.
        data = json.loads(snapshot_json(snapshot_from_probe(run_probe(None, Path.cwd()), environment())))
        data["gpu"] = gpu_facts()
        _BASE = data
    return copy.deepcopy(_BASE)


def set_version(data: dict[str, Any], dist_name: str, version: str) -> None:
    """Change the installed version of a distribution (and torch's build facts for torch)."""
    for dist in data["distributions"]:
        if dist["name"].lower() == dist_name:
            dist["version"] = version
    if dist_name == "torch" and data.get("torch"):
        data["torch"]["version"] = version


def node_name(i: int) -> str:
    """Name of the i-th node."""
    return f"node-{i:04d}"


# node index -> what drifts there
PLANTED: dict[int, tuple[str, Any]] = {
    12: ("driver", "535.104.05"),
    450: ("driver", "535.104.05"),
    999: ("driver", "535.104.05"),
    100: ("torch", "2.1.2+cu118"),
    200: ("torch", "2.1.2+cu118"),
    777: ("transformers", "4.30.0"),
    321: ("gpu_count", 7),
}


def write_fleet(folder: Path, count: int = 1000, planted: dict[int, tuple[str, Any]] | None = None) -> list[Path]:
    """Write ``count`` node snapshots into ``folder``, with ``planted`` drifts; returns the files."""
    planted = PLANTED if planted is None else planted
    folder.mkdir(parents=True, exist_ok=True)
    base = base_snapshot()
    base_text = json.dumps(base, indent=2)
    paths = []
    for i in range(count):
        path = folder / f"{node_name(i)}.json"
        if i in planted:
            data = copy.deepcopy(base)
            what, value = planted[i]
            if what == "driver":
                data["gpu"] = gpu_facts(driver=value)
            elif what == "gpu_count":
                data["gpu"] = gpu_facts(count=value)
            else:
                set_version(data, what, value)
            path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        else:
            path.write_text(base_text, encoding="utf-8")
        paths.append(path)
    return paths


def drifting(planted: dict[int, tuple[str, Any]] | None = None) -> list[str]:
    """The node names that drift in a generated fleet."""
    return sorted(node_name(i) for i in (PLANTED if planted is None else planted))
