"""The fix plan on synthetic snapshots: driver-aware torch choice, pins, conflicts, the file's text."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.fix.errors import Unsatisfiable
from autoglm_doctor.fix.formats import FixFormat
from autoglm_doctor.fix.plan import FixPlan, Line, make_plan
from autoglm_doctor.fix.render import render
from autoglm_doctor.model import Report
from autoglm_doctor.packs import Pack
from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts
from autoglm_doctor.probe.snapshot import Distribution, Shadow, Snapshot, TorchBuild
from tests.helpers.gpu import gpu_facts, python_facts

GiB = 1024**3


def dist(name: str, version: str, *requires: str, path_index: int = 0, folder: str = "/srv/site") -> Distribution:
    return Distribution(
        name=name,
        version=version,
        location=folder,
        path=f"{folder}/{name.replace('-', '_')}-{version}.dist-info",
        requires=list(requires),
        path_index=path_index,
    )


def stack(**replace: Distribution | None) -> list[Distribution]:
    """The healthy fake stack of tests/helpers/venvs.py, with some distributions replaced or removed."""
    base = {
        "torch": dist("torch", "2.1.2", "filelock", "typing-extensions>=4.8.0"),
        "numpy": dist("numpy", "1.26.4"),
        "transformers": dist(
            "transformers",
            "4.35.2",
            "tokenizers<0.19,>=0.14",
            "numpy>=1.17",
            "huggingface-hub<1.0,>=0.16.4",
            "accelerate>=0.20.3 ; extra == 'torch'",
        ),
        "tokenizers": dist("tokenizers", "0.15.0", "huggingface_hub>=0.16.4,<1.0"),
        "huggingface-hub": dist("huggingface-hub", "0.20.3"),
        "fastapi": dist("fastapi", "0.110.0", "starlette<0.37,>=0.36.3"),
        "starlette": dist("starlette", "0.36.3"),
        "uvicorn": dist("uvicorn", "0.27.1", "click>=7.0", "h11>=0.8", "colorama>=0.4 ; sys_platform == 'win32'"),
        "click": dist("click", "8.1.7"),
        "h11": dist("h11", "0.14.0"),
        "filelock": dist("filelock", "3.13.1"),
        "typing-extensions": dist("typing-extensions", "4.9.0"),
    }
    base.update(replace)
    return [d for d in base.values() if d is not None]


def snapshot(
    *,
    gpu: GpuFacts | None = None,
    torch: str | None = "2.1.2",
    cuda: str | None = None,
    python: str = "3.11.7",
    dists: list[Distribution] | None = None,
    config: dict[str, Any] | None = None,
    shadows: list[Shadow] | None = None,
) -> Snapshot:
    if dists is None:
        dists = stack(torch=dist("torch", torch, "filelock", "typing-extensions>=4.8.0") if torch else None)
    return Snapshot(
        python=dataclasses.replace(python_facts(python), machine="x86_64", platform_full="Linux-6.1-x86_64"),
        distributions=dists,
        torch=TorchBuild(version=torch, cuda=cuda) if torch else None,
        gpu=gpu,
        config=ConfigFacts(path="deploy.yaml", data=config) if config is not None else None,
        shadows=shadows or [],
    )


def report_for(snap: Snapshot, pack: Pack) -> Report:
    """The report the real checks give for ``snap`` (python.*, packages.*, cuda.*)."""
    loaded = registry.load(plugins=False)
    ctx = CheckContext(pack=pack, options=Options(smoke=False))
    specs = [s for s in loaded.checks.values() if s.id.startswith(("python.", "packages.", "cuda."))]
    return Report(results=tuple(runner.run(loaded, specs, snap, ctx)))


def plan_for(snap: Snapshot, pack: Pack | None = None) -> FixPlan:
    chosen = pack or packs.load(None)
    return make_plan(report_for(snap, chosen), snap, chosen)


def line(plan: FixPlan, name: str) -> Line:
    found = plan.line(name)
    assert found is not None, [item.requirement for item in plan.lines]
    return found


def a100_driver_525() -> GpuFacts:
    """Driver 525 (CUDA 12.0): no fixture file has it, so the facts are built directly."""
    gpu = GpuDevice(
        index=0,
        name="NVIDIA A100-SXM4-80GB",
        uuid="GPU-0a1b2c3d-0000-4000-8000-000000000525",
        compute_capability="8.0",
        memory_total=80 * GiB,
        memory_free=79 * GiB,
    )
    return GpuFacts(source="test", driver_version="525.85.12", cuda_driver_version=12000, gpus=[gpu], visible=[0])


# --- driver-aware torch choice (acceptance) ---------------------------------------------------

DRIVERS = {
    # driver: (GPU facts, torch line written, index variant)
    "470": (lambda: gpu_facts("v100-driver470"), "torch==2.7.1+cu118", "cu118"),
    "525": (a100_driver_525, "torch==2.14.1+cu126", "cu126"),
    "535": (lambda: gpu_facts("rtx4090"), "torch==2.5.1+cu121", "cu121"),
    "550": (lambda: gpu_facts("h100-80gb"), "torch==2.6.0+cu124", "cu124"),
    "570": (lambda: gpu_facts("rtx5090"), "torch==2.11.0+cu128", "cu128"),
    "none": (lambda: gpu_facts("no-driver"), "torch==2.1.2+cpu", "cpu"),
}


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_torch_build_and_index_follow_the_driver(driver: str) -> None:
    facts, expected, variant = DRIVERS[driver]
    plan = plan_for(snapshot(gpu=facts()))  # a CPU-only torch 2.1.2 is installed
    torch = line(plan, "torch")
    assert torch.requirement == expected
    assert plan.index_url == f"https://download.pytorch.org/whl/{variant}"
    text = render(plan, FixFormat.REQUIREMENTS, output_name="requirements-autoglm.txt")
    assert f"\n--extra-index-url https://download.pytorch.org/whl/{variant}\n" in text
    if driver == "none":
        assert torch.action == "keep"  # the installed version, as the CPU wheel
        assert "# GPU:      no NVIDIA driver answers" in text
    else:
        assert torch.action == "change"
        assert "cuda.cpu-only-torch" in torch.resolves
        assert f"# GPU:      NVIDIA driver {facts().driver_version}" in text


def test_driver_470_stays_on_cuda_11_and_torch_27_or_older() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("v100-driver470"), torch=None))
    pinned = Version(line(plan, "torch").requirement.removeprefix("torch=="))
    assert pinned.local == "cu118"
    assert pinned.release[:2] <= (2, 7)
    assert "minor-version compatibility" in plan.torch_why


def test_driver_550_gets_no_cuda_newer_than_124() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("h100-80gb"), torch=None))
    variant = Version(line(plan, "torch").requirement.removeprefix("torch==")).local or ""
    assert variant.startswith("cu12") and int(variant[2:]) <= 124
    assert "runs in full" in plan.torch_why


def test_installed_cuda_build_that_fits_is_kept() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("rtx4090"), torch="2.1.2+cu121", cuda="12.1"))
    torch = line(plan, "torch")
    assert (torch.requirement, torch.action) == ("torch==2.1.2+cu121", "keep")
    assert plan.index_url == "https://download.pytorch.org/whl/cu121"


def test_cuda_build_too_new_for_the_driver_is_replaced() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("v100-driver470"), torch="2.1.2+cu121", cuda="12.1"))
    torch = line(plan, "torch")
    assert torch.requirement == "torch==2.7.1+cu118"
    assert torch.installed == "2.1.2+cu121"
    assert "cuda.driver-too-old" in torch.resolves
    assert "cuda.driver-too-old" in plan.resolved


def test_cpu_deployment_on_a_gpu_host_gets_cpu_wheels() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("h100-80gb"), config={"device": "cpu"}))
    assert line(plan, "torch").requirement == "torch==2.1.2+cpu"
    assert plan.index_url.endswith("/whl/cpu")


def test_macos_uses_pypi_wheels_without_index() -> None:
    snap = snapshot()
    snap = dataclasses.replace(snap, python=dataclasses.replace(snap.python, platform="darwin", machine="arm64"))
    plan = plan_for(snap)
    assert line(plan, "torch").requirement == "torch==2.1.2"
    assert plan.index_url == ""
    assert "--extra-index-url" not in render(plan, FixFormat.REQUIREMENTS, output_name="r.txt")


# --- the pins ---------------------------------------------------------------------------------


def test_healthy_stack_pins_everything_as_installed() -> None:
    plan = plan_for(snapshot(gpu=gpu_facts("no-driver"), dists=stack() + [dist("pip", "24.0")]))
    kept = {item.requirement for item in plan.lines if item.action == "keep"}
    assert "transformers==4.35.2" in kept and "tokenizers==0.15.0" in kept and "click==8.1.7" in kept
    assert plan.line("pip") is None  # installer tooling is not pinned, as pip freeze
    assert [item.name for item in plan.lines if item.action != "keep"] == []


def test_numpy_below_2_only_when_torch_needs_it() -> None:
    with_old_torch = plan_for(snapshot(dists=stack(numpy=dist("numpy", "2.0.1"))))
    numpy = line(with_old_torch, "numpy")
    assert numpy.requirement == "numpy<2"
    assert numpy.resolves == ("packages.known-bad.numpy2-old-torch",)
    assert "NumPy 2.0.1 is installed beside torch" in numpy.why
    new_torch = dist("torch", "2.5.1", "filelock", "typing-extensions>=4.8.0")
    with_new_torch = plan_for(snapshot(torch="2.5.1", dists=stack(numpy=dist("numpy", "2.0.1"), torch=new_torch)))
    assert line(with_new_torch, "numpy").requirement == "numpy==2.0.1"


def test_a_new_torch_below_23_brings_numpy_below_2(tmp_path: Path) -> None:
    old = {"torch": dist("torch", "1.13.1"), "numpy": dist("numpy", "2.0.1")}
    snap = snapshot(gpu=gpu_facts("no-driver"), torch="1.13.1", dists=stack(**old))
    plan = plan_for(snap, _pack(tmp_path, ">=1.13,<2.3"))
    assert line(plan, "torch").requirement == "torch==2.2.2+cpu"  # newest below 2.3 with Python 3.11 wheels
    assert line(plan, "numpy").requirement == "numpy<2"
    newest = plan_for(snap)  # the default pack allows torch 2.14, which runs with NumPy 2
    assert line(newest, "torch").requirement == "torch==2.14.1+cpu"
    assert line(newest, "numpy").requirement == "numpy==2.0.1"


def test_dependency_outside_its_dependents_range_moves_into_it() -> None:
    plan = plan_for(snapshot(dists=stack(tokenizers=dist("tokenizers", "0.19.1", "huggingface_hub>=0.16.4,<1.0"))))
    tokenizers = line(plan, "tokenizers")
    assert tokenizers.requirement == "tokenizers<0.19,>=0.14"
    assert tokenizers.resolves == ("packages.dependency-conflict",)
    assert "transformers 4.35.2 requires tokenizers<0.19,>=0.14" in tokenizers.why


def test_too_old_transformers_goes_to_the_recommended_line_and_frees_what_it_capped() -> None:
    plan = plan_for(
        snapshot(
            dists=stack(
                transformers=dist("transformers", "4.29.2", "tokenizers<0.14,>=0.11.1", "numpy>=1.17"),
                tokenizers=dist("tokenizers", "0.13.3"),
            )
        )
    )
    transformers = line(plan, "transformers")
    assert transformers.requirement == "transformers==4.35.*"  # the pack's recommended line
    assert transformers.resolves[0] == "packages.out-of-range"
    assert line(plan, "tokenizers").requirement == "tokenizers"  # pip picks what transformers 4.35 needs
    assert line(plan, "numpy").requirement == "numpy==1.26.4"  # only a floor: stays pinned


def test_missing_required_and_config_implied_packages_are_added() -> None:
    plan = plan_for(snapshot(dists=stack(fastapi=None), config={"model": {"device_map": "cuda:0"}}))
    assert line(plan, "fastapi").requirement == "fastapi"
    accelerate = line(plan, "accelerate")
    assert accelerate.requirement == "accelerate>=0.20.3"  # transformers 4.35's own floor, not the pack's
    assert accelerate.action == "add"
    assert accelerate.resolves == ("packages.missing",)
    assert "the config sets device_map" in accelerate.why


def test_missing_dependency_is_added_with_its_range() -> None:
    plan = plan_for(snapshot(dists=stack(starlette=None)))
    starlette = line(plan, "starlette")
    assert starlette.requirement == "starlette<0.37,>=0.36.3"
    assert starlette.resolves == ("packages.dependency-missing",)


def test_torch_change_frees_dependents_pinned_to_the_old_torch_and_pairs_torchvision() -> None:
    dists = stack(torch=dist("torch", "1.13.1")) + [
        dist("torchaudio", "0.13.1", "torch==1.13.1"),
        dist("torchvision", "0.14.1", "torch==1.13.1"),
    ]
    plan = plan_for(snapshot(torch="1.13.1", dists=dists, gpu=gpu_facts("h100-80gb")))
    assert line(plan, "torch").requirement == "torch==2.6.0+cu124"
    # the release torchvision's and torchaudio's own metadata pair with torch 2.6.0, in its cu124 build
    assert line(plan, "torchvision").requirement == "torchvision==0.21.0+cu124"
    assert line(plan, "torchvision").resolves == ("packages.torchvision-mismatch",)
    audio = line(plan, "torchaudio")
    assert (audio.requirement, audio.action) == ("torchaudio==2.6.0+cu124", "change")


def test_transformers_hub_range_from_the_knowledge_base() -> None:
    plan = plan_for(snapshot(dists=stack(**{"huggingface-hub": dist("huggingface-hub", "1.2.0")})))
    hub = line(plan, "huggingface-hub")
    assert hub.requirement in ("huggingface-hub<1.0,>=0.16.4", "huggingface-hub<1.0,>=0.15.1")
    assert hub.action == "change"


def test_duplicate_is_pinned_once_at_the_copy_import_uses() -> None:
    dists = stack() + [dist("numpy", "1.24.0")]
    plan = plan_for(snapshot(dists=dists))
    numpy = line(plan, "numpy")
    assert numpy.requirement == "numpy==1.26.4"
    assert "packages.duplicate" in numpy.resolves
    assert "stale: 1.24.0" in numpy.note


def test_python_too_old_for_an_installed_distribution_frees_it() -> None:
    future = dataclasses.replace(dist("future-only", "1.0"), requires_python=">=3.99")
    plan = plan_for(snapshot(dists=stack() + [future]))
    assert line(plan, "future-only").requirement == "future-only"
    assert line(plan, "future-only").resolves == ("packages.requires-python",)


# --- when nothing fits: name the two requirements ---------------------------------------------


def _pack(tmp_path: Path, torch: str) -> Pack:
    path = tmp_path / "pack.yaml"
    path.write_text(f"pack: strict\npackages:\n  - name: torch\n    spec: '{torch}'\n  - name: transformers\n")
    return packs.load(str(path))


def test_pack_range_and_python_that_cannot_both_hold_are_named(tmp_path: Path) -> None:
    snap = snapshot(python="3.9.18", gpu=gpu_facts("no-driver"))
    with pytest.raises(Unsatisfiable) as caught:
        plan_for(snap, _pack(tmp_path, ">=2.9"))
    assert caught.value.first == "torch>=2.9 (pack strict)"
    assert caught.value.second == "Python 3.9.18 (the target interpreter)"
    assert "cannot both hold" in str(caught.value)


def test_pack_range_and_driver_that_cannot_both_hold_are_named(tmp_path: Path) -> None:
    snap = snapshot(gpu=gpu_facts("v100-driver470"))
    with pytest.raises(Unsatisfiable) as caught:
        plan_for(snap, _pack(tmp_path, ">=2.8"))
    assert (caught.value.first, caught.value.second) == (
        "torch>=2.8 (pack strict)",
        "NVIDIA driver 470.182.03 (runs CUDA <= 11.4)",
    )


def test_two_installed_distributions_that_disagree_are_named() -> None:
    dists = stack() + [dist("left", "1.0", "shared<1"), dist("right", "1.0", "shared>=2"), dist("shared", "0.5")]
    with pytest.raises(Unsatisfiable) as caught:
        plan_for(snapshot(dists=dists))
    names = f"{caught.value.first} | {caught.value.second}"
    assert "left 1.0 requires shared<1" in names
    assert "right 1.0 requires shared>=2" in names


# --- the file -------------------------------------------------------------------------------------


def test_header_and_comments_say_what_when_why() -> None:
    snap = snapshot(
        gpu=gpu_facts("rtx4090"),
        shadows=[Shadow(module="torch", path="/work/torch.py", shadowed="/srv/site/torch", distribution="torch")],
    )
    plan = plan_for(snap)
    text = render(
        plan, FixFormat.REQUIREMENTS, output_name="requirements-autoglm.txt", created="2026-11-25T16:00:00+00:00"
    )
    assert text.startswith("# Pinned requirements for the open-autoglm deployment")
    assert "# For:      Python 3.11.7 (cpython) at /srv/venv/bin/python" in text
    assert "#           on linux x86_64 (Linux-6.1-x86_64)" in text
    assert "# GPU:      NVIDIA driver 535.104.05 (runs CUDA <= 12.2); GPU 0: NVIDIA GeForce RTX 4090 (sm_89)" in text
    torch_line = next(t for t in text.splitlines() if t.startswith("torch=="))
    assert torch_line.startswith("torch==2.5.1+cu121  # was 2.1.2: a CPU-only build")
    assert torch_line.endswith("resolves cuda.cpu-only-torch")
    assert "\nclick==8.1.7\n" in text  # unchanged lines carry no comment
    assert "# Not resolved by this file (do these by hand):" in text
    assert "#   packages.shadowed: the local torch.py shadows the installed torch" in text


def test_constraints_keep_the_pins_and_comment_out_what_pip_refuses_or_ignores() -> None:
    plan = plan_for(
        snapshot(
            gpu=gpu_facts("rtx4090"),
            dists=stack(
                transformers=dist("transformers", "4.29.2", "tokenizers<0.14,>=0.11.1", "numpy>=1.17"),
                tokenizers=dist("tokenizers", "0.13.3"),
            ),
        )
    )
    text = render(plan, FixFormat.CONSTRAINTS, output_name="constraints-autoglm.txt")
    active = [t for t in text.splitlines() if t and not t.startswith("#")]
    assert all(not t.startswith("-") for t in active)  # no option lines
    assert all("[" not in t.split("#")[0] for t in active)  # no extras: pip refuses them in constraints
    assert "torch==2.5.1+cu121  # was 2.1.2" in text
    assert "# pass on the command line: --extra-index-url https://download.pytorch.org/whl/cu121" in text
    assert "# tokenizers: no version to constrain" in text
    assert "-m pip install --extra-index-url https://download.pytorch.org/whl/cu121 -c constraints-autoglm.txt" in text


def test_plan_is_a_pure_function() -> None:
    snap = snapshot(gpu=gpu_facts("h100-80gb"))
    pack = packs.load(None)
    report = report_for(snap, pack)
    first = render(make_plan(report, snap, pack), FixFormat.REQUIREMENTS, output_name="r.txt")
    assert render(make_plan(report, snap, pack), FixFormat.REQUIREMENTS, output_name="r.txt") == first


# --- what no index can reproduce ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direct_url", "why", "install"),
    [
        (
            {"url": "file:///src/fastapi", "dir_info": {"editable": True}},
            "installed editable from file:///src/fastapi",
            "-e /src/fastapi",
        ),
        (
            {"url": "https://github.com/acme/fastapi", "vcs_info": {"vcs": "git", "commit_id": "f" * 40}},
            "installed from git https://github.com/acme/fastapi",
            f"fastapi @ git+https://github.com/acme/fastapi@{'f' * 40}",
        ),
        ({"url": "file:///src/fastapi", "dir_info": {}}, "installed from the local folder file:///src/fastapi", ""),
        (
            {"url": "https://example.org/fastapi-0.110.0-py3-none-any.whl", "archive_info": {}},
            "installed from the URL https://example.org/fastapi-0.110.0-py3-none-any.whl",
            "fastapi @ https://example.org/fastapi-0.110.0-py3-none-any.whl",
        ),
    ],
)
def test_a_pack_required_distribution_installed_from_elsewhere_is_left_out_not_added(
    direct_url: dict[str, Any], why: str, install: str
) -> None:
    fork = dataclasses.replace(dist("fastapi", "0.110.0", "starlette<0.37,>=0.36.3"), direct_url=json.dumps(direct_url))
    plan = plan_for(snapshot(dists=stack(fastapi=fork)))
    assert plan.line("fastapi") is None  # neither pinned nor "added" as missing by the pack's rule
    assert line(plan, "starlette").requirement == "starlette==0.36.3"  # what it needs stays pinned
    (left,) = plan.left_out
    assert (left.name, left.version, left.why) == ("fastapi", "0.110.0", why)
    assert left.install == (install or "file:///src/fastapi")


def test_the_doctor_itself_is_never_pinned_even_from_an_index() -> None:
    plan = plan_for(snapshot(dists=[*stack(), dist("autoglm-doctor", "0.1.0", "typer>=0.12")]))
    assert plan.line("autoglm-doctor") is None
    assert plan.line("typer") is None  # its own requirements are not the deployment's
    assert [(item.name, item.why) for item in plan.left_out] == [
        ("autoglm-doctor", "the doctor itself, not part of the deployment")
    ]
