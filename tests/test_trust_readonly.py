"""Read-only: a full `check` leaves every file of the inspected deployment exactly as it was.

The deployment is real: a config file, a model folder and a target venv (hand-written
dist-info for the static checks; the project's torch/transformers for the smoke test, which
loads a real tiny model on the CPU). Every file is hashed (content, size, mode, mtime) before
and after, and the set of files and folders must not change either.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from autoglm_doctor import cli
from tests.helpers.venvs import healthy, make_venv

ROOT = Path(__file__).resolve().parents[1]
Fingerprint = dict[str, tuple[str, int, int, int]]


def fingerprint(*roots: Path, content: bool = True) -> Fingerprint:
    """path -> (sha256 or '-', size, mode, mtime_ns) of every file, folder and link under ``roots``."""
    out: Fingerprint = {}
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in [*dirs, *files]:
                path = Path(folder, name)
                st = path.lstat()
                digest = "-"
                if content and path.is_file() and not path.is_symlink():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                elif path.is_symlink():
                    digest = "link:" + os.readlink(path)
                out[str(path)] = (digest, st.st_size, st.st_mode, st.st_mtime_ns)
            dirs.sort()
        st = root.lstat()
        out[str(root)] = ("root", 0, st.st_mode, st.st_mtime_ns)
    return out


def assert_unchanged(before: Fingerprint, after: Fingerprint) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert not (added or removed or changed), f"added {added[:10]}, removed {removed[:10]}, changed {changed[:10]}"


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A valid safetensors file with zeroed data, written by hand."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    sizes = {"F32": 4, "BF16": 2, "F16": 2}
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        end = offset + count * sizes[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, end]}
        offset = end
    raw = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def static_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128,
        "vocab_size": 16,
        "torch_dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "generation_config.json").write_text("{}", encoding="utf-8")
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "WordLevel"}}', encoding="utf-8")
    (folder / "tokenizer_config.json").write_text('{"model_max_length": 128}', encoding="utf-8")
    write_safetensors(
        folder / "model.safetensors",
        {"model.embed_tokens.weight": ("F32", [16, 8]), "lm_head.weight": ("F32", [16, 8])},
    )
    return folder


def deployment_config(folder: Path, model: Path) -> Path:
    config = folder / "autoglm.yaml"
    config.write_text(
        f"model:\n  model_path: {model}\n  device: cpu\n  torch_dtype: float32\n  max_new_tokens: 4\n"
        "service:\n  host: 127.0.0.1\n  port: 8000\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH", "PYTHONPATH", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def test_full_check_without_smoke_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], quiet_env: None
) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    model = static_model(deploy / "model")
    config = deployment_config(deploy, model)
    venv = healthy(make_venv(tmp_path / "venv"))
    monkeypatch.chdir(deploy)
    roots = (deploy, venv.root)
    before = fingerprint(*roots)
    code = cli.main(
        [
            "check",
            "--no-smoke",
            "--config",
            str(config),
            "--model",
            str(model),
            "--python",
            str(venv.python),
            "--verify-hashes",
            "--format",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    ran = {r["id"]: r["status"] for r in report["results"]}
    # the areas that read the deployment actually ran (not skipped for want of input)
    for check_id in ("python.version", "packages.required", "config.syntax", "weights.files"):
        assert ran.get(check_id) not in (None, "skip", "error"), (check_id, ran.get(check_id))
    after = fingerprint(*roots)
    assert_unchanged(before, after)
    # snapshot, and re-evaluating it, write nothing but the snapshot file itself
    out = tmp_path / "node.json"
    assert (
        cli.main(
            ["snapshot", "--config", str(config), "--model", str(model), "--python", str(venv.python), "-o", str(out)]
        )
        == 0
    )
    assert cli.main(["check", "--snapshot", str(out), "--no-smoke", "--format", "json"]) in (0, 1)
    capsys.readouterr()
    assert_unchanged(before, fingerprint(*roots))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny Llama model, built once with examples/make_tiny_model.py (torch, in a subprocess)."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_tiny_model.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def smoke_packages() -> list[Path]:
    """The installed packages the smoke test imports (stat-checked: the smoke test must not write there)."""
    import importlib.util

    found = []
    for name in ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "huggingface_hub"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found.append(Path(next(iter(spec.submodule_search_locations))))
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_full_check_with_smoke_test_changes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    quiet_env: None,
    tiny_model: Path,
) -> None:
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    config = deployment_config(deploy, tiny_model)
    # The target venv: a real venv that sees the project's torch/transformers through a .pth file.
    venv = make_venv(tmp_path / "venv")
    import sysconfig

    (venv.site_packages / "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    monkeypatch.chdir(deploy)
    roots = (deploy, venv.root, tiny_model)
    before = fingerprint(*roots)
    libs_before = fingerprint(*smoke_packages(), content=False)
    code = cli.main(
        [
            "check",
            "--config",
            str(config),
            "--python",
            str(venv.python),
            "--device",
            "cpu",
            "--smoke-timeout",
            "300",
            "--format",
            "json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    smoke = next(r for r in report["results"] if r["id"] == "smoke.load-infer")
    assert smoke["status"] in ("pass", "warn"), smoke
    assert code in (0, 1)
    assert_unchanged(before, fingerprint(*roots))
    assert_unchanged(libs_before, fingerprint(*smoke_packages(), content=False))
