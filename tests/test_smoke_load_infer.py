"""smoke.load-infer for real: a tiny random Llama model, loaded and run on the CPU in a subprocess."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from autoglm_doctor import packs, registry, runner
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.model import CheckResult, Status
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot, TorchBuild
from autoglm_doctor.probe.weights import ModelFacts

ROOT = Path(__file__).resolve().parents[1]
MAKE_TINY = ROOT / "examples" / "make_tiny_model.py"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, built once per session (sharded, so 'weights k/N' has something to count)."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    subprocess.run(
        [sys.executable, str(MAKE_TINY), str(out), "--shards", "2"], check=True, capture_output=True, timeout=300
    )
    return out


def snapshot(
    model: Path, *, config: dict | None = None, auto_map: dict | None = None, python: str = sys.executable
) -> Snapshot:
    return Snapshot(
        python=PythonFacts(
            version="3.11.7", implementation="cpython", executable=python, prefix="", base_prefix="", env_kind="venv"
        ),
        torch=TorchBuild(version="2.13.0+cpu"),
        config=ConfigFacts(path="deploy.yaml", data=config or {}) if config is not None else None,
        model=ModelFacts(path=str(model), exists=True, auto_map=auto_map or {}),
    )


def run_smoke(snap: Snapshot, *, pack: packs.Pack | None = None, **options: object) -> CheckResult:
    spec = registry.load(plugins=False).checks["smoke.load-infer"]
    ctx = CheckContext(pack=pack or packs.load(), options=Options(**options))  # type: ignore[arg-type]
    return runner.run_check(spec, snap, ctx)


def codes(result: CheckResult) -> list[str]:
    return [f.code for f in result.findings]


def finding(result: CheckResult, code: str):  # noqa: ANN201
    return next(f for f in result.findings if f.code == code)


def test_venv(tmp_path: Path, sitecustomize: str, *, see_parent: bool = True) -> str:
    """A real venv (python -m venv) that sees this environment's torch, with its own sitecustomize.py."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True, timeout=60
    )
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if see_parent:  # the parent is itself a venv: --system-site-packages alone would not reach its torch
        (site / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "sitecustomize.py").write_text(sitecustomize)
    return str(python)


test_venv.__test__ = False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "flag", "expected"),
    [
        ({"model": {"device": "cpu"}}, None, ("cpu", None, "config device")),
        ({"device": "cuda:1", "device_map": "auto"}, None, (None, "auto", "config device_map")),
        ({"device_map": "auto"}, "cuda:0", ("cuda:0", None, "--device")),
        ({}, None, ("cpu", None, "default auto")),  # no GPU facts: no GPU
    ],
)
def test_device_resolution(tiny_model: Path, config: dict, flag: str | None, expected: tuple) -> None:
    from autoglm_doctor.checks.smoke import resolve_device

    ctx = CheckContext(pack=packs.load(), options=Options(device=flag))
    assert resolve_device(snapshot(tiny_model, config=config), ctx) == expected


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_device_flag_overrides_config_and_auto_without_gpu_warns(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoglm_doctor.cli import main

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # progress is shown only on a terminal

    config = tmp_path / "deploy.yaml"
    config.write_text("model:\n  device: cuda:3\n  torch_dtype: float32\n")
    pack = tmp_path / "gpu-pack.yaml"
    pack.write_text((ROOT / "checks" / "open-autoglm.yaml").read_text().replace("gpu: optional", "gpu: required"))
    report = tmp_path / "report.json"
    argv = ["check", "--config", str(config), "--model", str(tiny_model), "--pack", str(pack), "--device", "auto"]
    code = main([*argv, "--only", "smoke.load-infer", "--format", "json", "--output", str(report)])
    result = json.loads(report.read_text())["results"][0]
    # --device auto beats the config's cuda:3; this machine has no usable GPU, so the CPU it is, with a warning
    assert (code, result["status"]) == (0, "warn"), result
    by_code = {f["code"]: f for f in result["findings"]}
    assert by_code["smoke.no-gpu"]["severity"] == "warning"
    measured = by_code["smoke.measured"]["message"]
    assert "on cpu (float32)" in measured and "first token after" in measured
    assert "tok/s" in measured and "peak RSS" in measured
    assert "device=cpu (--device auto)" in by_code["smoke.options"]["message"]
    progress = terminal.getvalue()
    shards = len(set(json.loads((tiny_model / "model.safetensors.index.json").read_text())["weight_map"].values()))
    weights = [f"weights {k}/{shards}" for k in range(shards + 1)]
    for phase in ("import torch", "import transformers", "tokenizer", *weights, "generate"):
        assert f"smoke.load-infer: {phase} · " in progress


def test_auto_takes_cuda0_when_the_facts_show_a_usable_gpu(tiny_model: Path) -> None:
    from autoglm_doctor.checks.smoke import resolve_device
    from autoglm_doctor.probe.gpu import GpuDevice, GpuFacts

    gpu = GpuFacts(gpus=[GpuDevice(index=0, name="NVIDIA H100 80GB HBM3", compute_capability="9.0")], visible=[0])
    base = snapshot(tiny_model)
    ctx = CheckContext(pack=packs.load(), options=Options(device="auto"))
    cuda_torch = TorchBuild(version="2.5.1+cu124", cuda="12.4")
    assert resolve_device(dataclasses.replace(base, gpu=gpu, torch=cuda_torch), ctx)[0] == "cuda:0"
    assert resolve_device(dataclasses.replace(base, gpu=gpu), ctx)[0] == "cpu"  # a CPU-only torch
    hidden = dataclasses.replace(gpu, visible=[], cuda_visible_devices="")
    assert resolve_device(dataclasses.replace(base, gpu=hidden, torch=cuda_torch), ctx)[0] == "cpu"


def test_corrupt_shard_is_named(tiny_model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "model"
    shutil.copytree(tiny_model, broken)
    shard = sorted(broken.glob("model-*.safetensors"))[1]
    shard.write_bytes(shard.read_bytes()[:100])  # a truncated download
    result = run_smoke(snapshot(broken))
    assert result.status is Status.FAIL
    found = finding(result, "smoke.corrupt-weights")
    assert "re-download" in (found.fix or "")
    assert "weights" in found.message


def _remote_code_model(tiny_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "tinyglm"
    config["auto_map"] = {
        "AutoConfig": "configuration_tinyglm.TinyConfig",
        "AutoModelForCausalLM": "modeling_tinyglm.TinyModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_tinyglm.py").write_text("raise SystemExit('remote code must not run')\n")
    return folder


def test_remote_code_known_from_facts_is_not_run(tiny_model: Path, tmp_path: Path) -> None:
    folder = _remote_code_model(tiny_model, tmp_path)
    started = time.monotonic()
    result = run_smoke(snapshot(folder, auto_map={"AutoConfig": "configuration_tinyglm.TinyConfig"}))
    assert time.monotonic() - started < 2  # refused before any subprocess
    assert result.status is Status.WARN
    assert "--allow-remote-code" in (finding(result, "smoke.remote-code-refused").fix or "")


def test_remote_code_found_by_the_load_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    folder = _remote_code_model(tiny_model, tmp_path)
    # facts did not see the auto_map: the load itself refuses (trust_remote_code=False), the code never runs
    result = run_smoke(snapshot(folder), allow_remote_code=True)
    assert result.status is Status.FAIL
    found = finding(result, "smoke.remote-code-refused")
    assert "trust_remote_code: true" in (found.fix or "")


def _oom_model(tiny_model: Path, dst: Path, vocab: int = 3_000_000) -> Path:
    """The tiny model with a huge (sparse, all-zero) embedding: 768 MB of tensors that take no disk."""
    shutil.copytree(tiny_model, dst)
    tensors: dict[str, tuple[str, list[int], bytes | None]] = {}
    for shard in sorted(dst.glob("model-*.safetensors")):
        raw = shard.read_bytes()
        size = struct.unpack("<Q", raw[:8])[0]
        for name, meta in json.loads(raw[8 : 8 + size]).items():
            if name != "__metadata__":
                begin, end = meta["data_offsets"]
                tensors[name] = (meta["dtype"], meta["shape"], raw[8 + size + begin : 8 + size + end])
        shard.unlink()
    hidden = tensors["model.embed_tokens.weight"][1][1]
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        tensors[name] = ("F32", [vocab, hidden], None)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, _) in sorted(tensors.items()):
        count = 4 * int(shape[0]) * (int(shape[1]) if len(shape) > 1 else 1)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + count]}
        offset += count
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    out = dst / "model-00001-of-00001.safetensors"
    with out.open("wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        base = handle.tell()
        for name, (_, _, data) in tensors.items():
            if data is not None:
                handle.seek(base + header[name]["data_offsets"][0])  # type: ignore[index]
                handle.write(data)
        handle.truncate(base + offset)
    config = json.loads((dst / "config.json").read_text())
    config["vocab_size"] = vocab
    (dst / "config.json").write_text(json.dumps(config))
    (dst / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": dict.fromkeys(tensors, out.name)})
    )
    return dst


# When transformers opens the shard index (the second open: the script counts shards first), the address
# space is capped 256 MB above what is mapped: the 768 MB of weights cannot fit.
OOM_SITECUSTOMIZE = """
import resource, sys
_opened = []
def _cap(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].endswith("model.safetensors.index.json"):
        _opened.append(args[0])
        if len(_opened) == 2:
            with open("/proc/self/status") as status:
                mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
            resource.setrlimit(resource.RLIMIT_AS, (mapped + 256 * 1024 * 1024, resource.RLIM_INFINITY))
sys.addaudithook(_cap)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_out_of_memory_under_an_address_space_limit(tiny_model: Path, tmp_path: Path) -> None:
    python = test_venv(tmp_path, OOM_SITECUSTOMIZE)
    model = _oom_model(tiny_model, tmp_path / "big")
    result = run_smoke(snapshot(model, python=python), python=python)
    assert result.status is Status.FAIL, result.findings
    found = finding(result, "smoke.out-of-memory")
    assert "weights" in found.message
    assert "bfloat16" in (found.fix or "")


HANG_SITECUSTOMIZE = """
import os, subprocess, time
helper = subprocess.Popen(["sleep", "300"])
with open(os.environ["SMOKE_HANG_PIDS"], "w") as handle:
    handle.write(f"{os.getpid()} {helper.pid}")
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped by init


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_hang_is_killed_with_everything_it_started(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("SMOKE_HANG_PIDS", str(pids_file))
    python = test_venv(tmp_path, HANG_SITECUSTOMIZE, see_parent=False)
    before = set(_children_of(os.getpid()))
    started = time.monotonic()
    result = run_smoke(snapshot(tiny_model, python=python), python=python, smoke_timeout=3)
    assert time.monotonic() - started < 10
    assert result.status is Status.FAIL
    found = finding(result, "smoke.timeout")
    assert "after 3 s" in found.message and "--smoke-timeout 6" in (found.fix or "")
    child, helper = map(int, pids_file.read_text().split())
    deadline = time.monotonic() + 5
    while (_alive(child) or _alive(helper)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the smoke script survived its timeout"
    assert not _alive(helper), "a process the smoke script started survived the timeout"
    assert set(_children_of(os.getpid())) <= before


def test_crash_by_signal_is_named(tmp_path: Path, tiny_model: Path) -> None:
    python = test_venv(tmp_path, "import os\nos.abort()\n", see_parent=False)
    result = run_smoke(snapshot(tiny_model, python=python), python=python)
    assert result.status is Status.FAIL
    found = finding(result, "smoke.crashed")
    assert "SIGABRT" in found.message and "'start'" in found.message
    assert "PYTHONFAULTHANDLER=1" in (found.fix or "")


NUMPY_TORCH = '''
import sys
sys.stderr.write("""
A module that was compiled using NumPy 1.x cannot be run in
NumPy 2.1.3 as it may crash. To support both 1.x and 2.x
versions of NumPy, modules must be compiled with NumPy 2.0.
""")
raise ImportError("numpy.core.multiarray failed to import")
'''


def test_torch_that_fails_to_import_reports_the_decisive_line(tmp_path: Path, tiny_model: Path) -> None:
    # a torch built against NumPy 1.x under NumPy 2 cannot be installed here: this stand-in prints what it prints
    python = test_venv(tmp_path, "", see_parent=False)
    site = (
        Path(python).parents[1] / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text(NUMPY_TORCH)
    result = run_smoke(snapshot(tiny_model, python=python), python=python)
    assert result.status is Status.FAIL
    found = finding(result, "smoke.import-failed")
    assert "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.1.3" in found.message
    assert "'numpy<2'" in (found.fix or "")


def test_skips_from_a_saved_snapshot(tiny_model: Path) -> None:
    result = run_smoke(snapshot(tiny_model), from_snapshot=True)
    assert result.status is Status.SKIP
    assert "live machine" in result.findings[0].message


def test_the_doctor_itself_never_imports_torch(tiny_model: Path) -> None:
    run_smoke(snapshot(tiny_model), from_snapshot=True)
    assert "torch" not in sys.modules and "transformers" not in sys.modules
