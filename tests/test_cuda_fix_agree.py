"""cuda.torch-build's fix command and `check --fix` name the same torch build and wheel index.

Both come from autoglm_doctor.knowledge.torch_choice.choose. Every GPU fixture and every driver case of
tests/test_fix_plan.py is crossed with installed torch builds that are wrong in each way the check
knows (CPU-only, ROCm, CUDA too new for the driver, no kernels for the GPU), one that is fine, and a
transformers that narrows torch (4.52 asks for torch<2.7), so the pair search moves torch.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from autoglm_doctor import packs
from autoglm_doctor.fix.plan import make_plan
from autoglm_doctor.knowledge.torch_choice import choose
from autoglm_doctor.model import Severity, Status
from autoglm_doctor.probe.gpu import GpuFacts
from autoglm_doctor.probe.snapshot import Snapshot, TorchBuild
from tests.helpers.gpu import FIXTURES, gpu_facts
from tests.test_fix_plan import DRIVERS, dist, report_for, snapshot, stack

HOSTS: dict[str, Callable[[], GpuFacts]] = {
    **{f"fixture:{path.stem}": (lambda stem=path.stem: gpu_facts(stem)) for path in sorted(FIXTURES.glob("*.json"))},
    **{f"driver:{name}": facts for name, (facts, _, _) in DRIVERS.items()},
}

TORCH_CODES = ("cuda.cpu-only-torch", "cuda.rocm-build-on-nvidia", "cuda.driver-too-old", "cuda.arch-not-in-build")


def installed(kind: str, gpu: GpuFacts) -> Snapshot:
    """A snapshot of ``gpu``'s host with one kind of installed torch (and the healthy rest of the stack)."""
    if kind == "cpu-only":
        return snapshot(gpu=gpu)  # torch 2.1.2, no CUDA
    if kind == "rocm":
        snap = snapshot(gpu=gpu, torch="2.5.1+rocm6.2")
        return dataclasses.replace(snap, torch=TorchBuild(version="2.5.1+rocm6.2", hip="6.2.41133"))
    if kind == "cuda-too-new":
        return snapshot(gpu=gpu, torch="2.13.0+cu130", cuda="13.0")
    if kind == "old-arch-list":
        return snapshot(gpu=gpu, torch="1.13.1+cu117", cuda="11.7")  # sm_37..sm_86: no Hopper, no Blackwell
    if kind == "fitting":
        return snapshot(gpu=gpu, torch="2.5.1+cu121", cuda="12.1")
    if kind == "transformers-4.52":
        narrowing = dist("transformers", "4.52.4", "tokenizers<0.22,>=0.21", "huggingface-hub<1.0,>=0.30.0")
        dists = stack(
            torch=dist("torch", "2.1.2", "filelock"),
            transformers=narrowing,
            tokenizers=dist("tokenizers", "0.21.1", "huggingface_hub>=0.16.4,<1.0"),
            **{"huggingface-hub": dist("huggingface-hub", "0.30.2")},
        )
        return snapshot(gpu=gpu, dists=dists)
    raise AssertionError(kind)


KINDS = ("cpu-only", "rocm", "cuda-too-new", "old-arch-list", "fitting", "transformers-4.52")
PIN = re.compile(r"(?:^|\s)torch==(\S+)")
INDEX = re.compile(r"--(?:extra-)?index-url (\S+)")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("host", sorted(HOSTS))
def test_check_fix_command_and_fix_plan_name_the_same_torch(host: str, kind: str) -> None:
    pack = packs.load(None)
    snap = installed(kind, HOSTS[host]())
    report = report_for(snap, pack)
    plan = make_plan(report, snap, pack)
    torch_line = plan.line("torch")
    assert torch_line is not None
    build = next(r for r in report.results if r.id == "cuda.torch-build")
    errors = [f for f in build.findings if f.severity is Severity.ERROR]

    if not (snap.gpu and snap.gpu.visible_gpus()):
        # No GPU: the check has nothing to say and the file takes CPU wheels.
        assert build.status is Status.SKIP
        assert torch_line.requirement.endswith("+cpu") and plan.index_url.endswith("/whl/cpu")
        return

    # The file changes torch for a cuda.* reason exactly when the check reports one.
    assert {c for c in torch_line.resolves if c.startswith("cuda.")} == {f.code for f in errors}
    assert {f.code for f in errors} <= set(TORCH_CODES)
    if not errors:
        assert not any(f.fix and "pip install" in f.fix for f in build.findings)
        return

    # Every error names the same build, and it is the file's: version, variant and index.
    for found in errors:
        pin, index = PIN.search(found.fix or ""), INDEX.search(found.fix or "")
        assert pin is not None and index is not None, found.fix
        assert f"torch=={pin.group(1)}" == torch_line.requirement, (found.fix, torch_line.requirement)
        assert index.group(1) == plan.index_url
        assert f"torch {pin.group(1)} is the build `check --fix` pins" in found.message
    chosen = choose(snap, pack).torch
    assert chosen is not None and chosen.requirement == torch_line.requirement
    if kind == "cpu-only" and host.startswith("driver:"):
        assert torch_line.requirement == DRIVERS[host.removeprefix("driver:")][1]  # docs/fix.md's table


def test_hosts_cover_every_fixture_and_driver_case() -> None:
    stems = {path.stem for path in Path(FIXTURES).glob("*.json")}
    assert {f"fixture:{stem}" for stem in stems} <= set(HOSTS)
    assert {"driver:470", "driver:525", "driver:535", "driver:550", "driver:570", "driver:none"} <= set(HOSTS)


def test_driver_124_prefers_a_build_it_runs_in_full_over_minor_version_compatibility() -> None:
    # The disagreement this chooser settles: 2.14.1+cu126 (minor-version compatibility) vs 2.6.0+cu124 (in full).
    snap = installed("cpu-only", gpu_facts("h100-80gb"))
    pack = packs.load(None)
    chosen = choose(snap, pack).torch
    assert chosen is not None
    assert (chosen.full_version, chosen.compat, chosen.index_url) == (
        "2.6.0+cu124",
        "full",
        "https://download.pytorch.org/whl/cu124",
    )


def test_a_transformers_that_narrows_torch_moves_both_answers_alike() -> None:
    # transformers 4.52 asks for torch<2.7; driver 525 (CUDA 12.0) has no build it runs in full, so the
    # newest 12.x build below 2.7 through minor-version compatibility: 2.6.0+cu126 in the check and the file.
    snap = installed("transformers-4.52", DRIVERS["525"][0]())
    pack = packs.load(None)
    report = report_for(snap, pack)
    build = next(r for r in report.results if r.id == "cuda.torch-build")
    cpu_only = next(f for f in build.findings if f.code == "cuda.cpu-only-torch")
    assert "torch==2.6.0+cu126 --index-url https://download.pytorch.org/whl/cu126" in (cpu_only.fix or "")
    assert "only through CUDA minor-version compatibility" in cpu_only.message
    plan = make_plan(report, snap, pack)
    torch_line = plan.line("torch")
    assert torch_line is not None and torch_line.requirement == "torch==2.6.0+cu126"


def test_the_chooser_imports_neither_the_checks_nor_the_fix() -> None:
    code = (
        "import sys, autoglm_doctor.knowledge.torch_choice; "
        "print(sorted(m for m in sys.modules if m.startswith(('autoglm_doctor.checks', 'autoglm_doctor.fix'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
