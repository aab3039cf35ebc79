"""GPU-area helpers: NVML fixtures, synthetic snapshots and running one check on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult
from autoglm_doctor.probe import gpu as gpu_probe
from autoglm_doctor.probe.gpu import FixtureBackend, GpuFacts
from autoglm_doctor.probe.host import HostFacts
from autoglm_doctor.probe.snapshot import Distribution, PythonFacts, Snapshot, TorchBuild
from autoglm_doctor.probe.weights import ModelFacts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gpu"


def fixture(name: str) -> Path:
    """Path of an NVML fixture (``h100-80gb``...)."""
    path = FIXTURES / f"{name}.json"
    assert path.is_file(), path
    return path


def gpu_facts(name: str, environ: dict[str, str] | None = None, *, nvcc: str = "") -> GpuFacts:
    """GPU facts gathered through the fake NVML backend; nvcc fixed to ``nvcc`` (none by default)."""
    facts = gpu_probe.gather(backend=FixtureBackend.from_file(fixture(name)), environ=environ or {"PATH": ""})
    return dataclasses.replace(facts, nvcc_path="/usr/local/cuda/bin/nvcc" if nvcc else "", nvcc_version=nvcc)


def python_facts(version: str = "3.11.7", platform: str = "linux") -> PythonFacts:
    """A target interpreter."""
    return PythonFacts(
        version=version,
        implementation="cpython",
        executable="/srv/venv/bin/python",
        prefix="/srv/venv",
        base_prefix="/usr",
        env_kind="venv",
        platform=platform,
    )


def snapshot(
    *,
    gpu: GpuFacts | None = None,
    torch: str | None = None,
    cuda: str | None = None,
    hip: str | None = None,
    config: dict[str, Any] | None = None,
    model: ModelFacts | None = None,
    host: HostFacts | None = None,
    transformers: str = "4.35.2",
) -> Snapshot:
    """A synthetic Snapshot with just what the GPU checks read."""
    dists = [Distribution(name="transformers", version=transformers, location="/srv/site", path="/srv/site/t")]
    return Snapshot(
        python=python_facts(),
        distributions=dists,
        torch=TorchBuild(version=torch, cuda=cuda, hip=hip) if torch else None,
        gpu=gpu,
        host=host,
        config=ConfigFacts(path="deploy.yaml", data=config) if config is not None else None,
        model=model,
    )


def run_check(check_id: str, snap: Snapshot, *, pack: str | None = None, device: str | None = None) -> CheckResult:
    """Run one registered check on a snapshot, as the runner does."""
    loaded = registry.load(plugins=False)
    ctx = CheckContext(pack=packs.load(pack), options=Options(device=device, smoke=False))
    return runner.run_check(loaded.checks[check_id], snap, ctx)


def finding(result: CheckResult, code: str) -> Any:
    """The finding with ``code``; fails the test with what was found instead."""
    for item in result.findings:
        if item.code == code:
            return item
    raise AssertionError(f"no {code} in {result.id} ({result.status.value}): {[f.code for f in result.findings]}")


def nine_b_model(**changes: Any) -> ModelFacts:
    """A GLM-4-9B-shaped model (AutoGLM-Phone-9B): 9.4 B parameters, 40 layers, 2 KV heads of 128."""
    base = ModelFacts(
        path="/models/AutoGLM-Phone-9B",
        source="--model",
        exists=True,
        parameter_count=9_400_000_000,
        parameter_bytes=18_800_000_000,
        bytes_by_dtype={"BF16": 18_800_000_000},
        torch_dtype="bfloat16",
        max_position_embeddings=131072,
        num_hidden_layers=40,
        hidden_size=4096,
        num_attention_heads=32,
        num_key_value_heads=2,
        head_dim=128,
    )
    return dataclasses.replace(base, **changes)


def write_gpu_pack(path: Path, mode: str) -> Path:
    """A check pack whose ``gpu:`` is ``mode`` (required, optional, none)."""
    path.write_text(f"pack: gpu-{mode}\ngpu: {mode}\npackages:\n  - name: torch\n    spec: '>=1.13'\n")
    return path
