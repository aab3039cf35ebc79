"""Build snapshots around a real config file and run the config.* checks on them (config lint tests)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.configfile.load import load_config
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult
from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts
from autoglm_doctor.probe.snapshot import Distribution, PythonFacts, Snapshot, TorchBuild
from autoglm_doctor.probe.weights import ModelFacts

CONFIG_CHECKS = ("config.syntax", "config.env", "config.values", "config.request")
GIB = 1024**3
ENVIRON = {
    "MODEL_WEIGHT_PATH": "/models/autoglm-phone-9b",
    "AUTOGLM_SECRET_KEY": "q8Zr3xVt0pLk5mNw2bYc7dHf9sJg4aEu1KoTiRyX",
}
"""The environment the corpus configs are interpolated with."""
DEFAULT_INSTALLED = ("torch", "transformers", "fastapi", "uvicorn", "accelerate", "openai", "Pillow")
PHONE_ENV = {
    "PHONE_AGENT_BASE_URL": "http://127.0.0.1:8000/v1",
    "PHONE_AGENT_MODEL": "autoglm-phone-9b",
    "PHONE_AGENT_DEVICE_TYPE": "adb",
}


def python_facts() -> PythonFacts:
    """A probed-looking interpreter."""
    return PythonFacts(
        version="3.11.7",
        implementation="cpython",
        executable="/srv/venv/bin/python",
        prefix="/srv/venv",
        base_prefix="/usr",
        env_kind="venv",
        platform="linux",
    )


def dists(names: tuple[str, ...] | list[str], versions: Mapping[str, str] | None = None) -> list[Distribution]:
    """Installed distributions with the given names (versions default to 1.0, torch 2.3.0)."""
    versions = {"torch": "2.3.0", "transformers": "4.40.0", **(versions or {})}
    return [
        Distribution(
            name=n, version=versions.get(n, "1.0"), location="/srv/venv/lib", path=f"/srv/venv/lib/{n}.dist-info"
        )
        for n in names
    ]


def gpu(gib: float | None) -> GpuFacts | None:
    """GPU facts with one GPU of ``gib`` GiB (None: no GPU facts; 0: no GPU visible)."""
    if gib is None:
        return None
    if gib == 0:
        return GpuFacts(nvml_error="NVML Shared Library Not Found")
    return GpuFacts(gpus=[GpuDevice(index=0, name="NVIDIA test GPU", memory_total=int(gib * GIB))])


def facts_for(path: Path, *, cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> ConfigFacts:
    """Config facts for a real file, as gather() would make them."""
    return load_config(
        path, shown=path.name, source="--config", cwd=cwd or path.parent.parent, environ=dict(environ or ENVIRON)
    )


def snapshot(
    config: ConfigFacts | None,
    *,
    installed: tuple[str, ...] | list[str] = DEFAULT_INSTALLED,
    versions: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    model: ModelFacts | None = None,
    gpu_gib: float | None = 80,
    torch_cuda: str | None = "12.1",
) -> Snapshot:
    """A snapshot around ``config`` with the given surroundings."""
    torch_version = (versions or {}).get("torch", "2.3.0")
    return Snapshot(
        python=python_facts(),
        distributions=dists(installed, versions),
        torch=TorchBuild(version=torch_version, cuda=torch_cuda) if "torch" in installed else None,
        env=dict(env or {}),
        gpu=gpu(gpu_gib),
        config=config,
        model=model,
    )


def run_checks(
    snap: Snapshot, pack: str = "open-autoglm", *, request: Path | None = None, ids: tuple[str, ...] = CONFIG_CHECKS
) -> dict[str, CheckResult]:
    """Run the config checks (through the real runner) and return the results by id."""
    loaded = registry.load(plugins=False)
    ctx = CheckContext(pack=packs.load(pack), options=Options(smoke=False, request=request))
    return {cid: runner.run_check(loaded.checks[cid], snap, ctx) for cid in ids}


def findings(results: dict[str, CheckResult]) -> list[tuple[str, str, int | None]]:
    """(check id, code, line) of every warning and error."""
    out = [
        (cid, f.code, f.location.line if f.location else None)
        for cid, result in results.items()
        for f in result.findings
        if f.severity.value != "info"
    ]
    return sorted(out, key=lambda t: (t[0], t[1], t[2] or 0))


def model_facts(**fields: Any) -> ModelFacts:
    """A located model folder whose config.json says ``fields``."""
    base = {"path": "/models/autoglm-phone-9b", "exists": True, "has_config": True, "model_type": "chatglm"}
    base.update(fields)
    return dataclasses.replace(ModelFacts(), **base)
