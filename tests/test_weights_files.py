"""weights.files: a real folder per failure, each reported by the right code with a fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import packs, registry
from autoglm_doctor.cli import main
from autoglm_doctor.context import CheckContext, Options
from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.model import CheckResult, Status
from autoglm_doctor.probe.snapshot import PythonFacts, Snapshot
from autoglm_doctor.probe.weights import ModelFacts, gather
from autoglm_doctor.runner import run_check
from tests.helpers.model_folders import LFS_POINTER, build_hf_cache, build_model, write_safetensors

PYTHON = PythonFacts(
    version="3.11.7", implementation="cpython", executable="python", prefix="/", base_prefix="/", env_kind="venv"
)


def run(facts: ModelFacts | None, check_id: str, **options: Any) -> CheckResult:
    """Run one weights check over a snapshot holding ``facts``."""
    spec = registry.load(plugins=False).checks[check_id]
    snap = Snapshot(python=PYTHON, model=facts)
    return run_check(spec, snap, CheckContext(pack=packs.load(None), options=Options(**options)))


def check_folder(folder: Path, check_id: str = "weights.files", **gather_options: Any) -> CheckResult:
    return run(gather(GatherOptions(model=str(folder), cwd=folder.parent, **gather_options)), check_id)


def codes(result: CheckResult) -> list[str]:
    return [f.code for f in result.findings]


def only_error(result: CheckResult, code: str) -> str:
    """The fix of the single error finding ``code`` (asserting it is the only error)."""
    errors = [f for f in result.findings if f.severity.value == "error"]
    assert [f.code for f in errors] == [code], [(f.code, f.message) for f in errors]
    assert result.status is Status.FAIL
    assert errors[0].fix, "every failure carries a fix"
    return errors[0].fix


def test_healthy_sharded_vision_model_passes(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=3, layers=6, vision=True)
    result = check_folder(folder)
    assert result.status is Status.PASS, [(f.code, f.message) for f in result.findings]
    assert codes(result) == ["weights.summary"]
    assert "3 safetensors files" in result.findings[0].message


def test_lfs_pointer_instead_of_weights(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").write_text(LFS_POINTER)
    fix = only_error(check_folder(folder), "weights.lfs-pointer")
    assert "hf download" in fix or "git" in fix
    (folder / ".git").mkdir()  # a clone without git-lfs: the fix pulls the real files
    result = check_folder(folder)
    assert only_error(result, "weights.lfs-pointer").startswith("git lfs install && git -C")
    assert "model.safetensors" in result.findings[0].message


def test_missing_shard(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=3, layers=6)
    (folder / "model-00002-of-00003.safetensors").unlink()
    result = check_folder(folder)
    fix = only_error(result, "weights.shard-missing")
    assert (
        "model-00002-of-00003.safetensors is missing (named in model.safetensors.index.json"
        in result.findings[0].message
    )
    assert "model-00002-of-00003.safetensors" in fix


def test_missing_index_with_shards(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=2, layers=4)
    (folder / "model.safetensors.index.json").unlink()
    assert "model.safetensors.index.json" in only_error(check_folder(folder), "weights.index-missing")


def test_truncated_shard(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=2, layers=4)
    shard = folder / "model-00001-of-00002.safetensors"
    os.truncate(shard, shard.stat().st_size - 100)
    result = check_folder(folder)
    fix = only_error(result, "weights.truncated")
    assert "is cut off" in result.findings[0].message and "--force-download" in fix
    assert result.findings[0].location is not None and result.findings[0].location.file == str(shard)


def test_tensor_offsets_beyond_the_file(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    tensors = {"model.embed_tokens.weight": ("BF16", [16, 8]), "lm_head.weight": ("BF16", [16, 8])}
    path = write_safetensors(
        folder / "model.safetensors", tensors, offsets={"lm_head.weight": (256, 1 << 40)}, sparse=True
    )
    os.truncate(path, path.stat().st_size - ((1 << 40) - 512))  # the file holds the 512 bytes the shapes need
    result = check_folder(folder)
    only_error(result, "weights.bad-offsets")
    assert "reach past the" in result.findings[0].message


def test_trailing_data(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    with open(folder / "model.safetensors", "ab") as handle:
        handle.write(b"\0" * 64)
    only_error(check_folder(folder), "weights.trailing-data")


def test_unparseable_header(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"<html>rate limited</html>" * 4)
    only_error(check_folder(folder), "weights.header-invalid")


def test_missing_config_json(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "config.json").unlink()
    assert "config.json" in only_error(check_folder(folder), "weights.config-missing")


def test_invalid_config_json_points_at_the_line(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "config.json").write_text('{\n  "model_type": "llama",\n}\n')
    result = check_folder(folder)
    only_error(result, "weights.config-invalid")
    location = result.findings[0].location
    assert location is not None and location.line == 3


def test_missing_tokenizer(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", tokenizer=False)
    result = check_folder(folder)
    assert "tokenizer.json" in only_error(result, "weights.tokenizer-missing")


@pytest.mark.parametrize(
    ("tokenizer_class", "present", "missing"),
    [
        ("LlamaTokenizer", [], "*.model"),
        ("Qwen2TokenizerFast", ["vocab.json"], "merges.txt"),
        ("BertTokenizer", [], "vocab.txt"),
        ("LlamaTokenizerFast", ["tokenizer.model"], None),
        ("GPT2Tokenizer", ["vocab.json", "merges.txt"], None),
    ],
)
def test_tokenizer_files_implied_by_tokenizer_config(
    tmp_path: Path, tokenizer_class: str, present: list[str], missing: str | None
) -> None:
    folder = build_model(tmp_path / "m", tokenizer=False)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": tokenizer_class}))
    for name in present:
        (folder / name).write_text("x")
    result = check_folder(folder)
    if missing is None:
        assert result.status is Status.PASS
    else:
        only_error(result, "weights.tokenizer-missing")
        assert f"missing: {missing}" in result.findings[0].message


def test_pickle_only_weights_warn(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x02" + b"\0" * 2048)
    result = check_folder(folder)
    assert result.status is Status.WARN
    (finding,) = [f for f in result.findings if f.code == "weights.pickle-only"]
    assert finding.fix and "safetensors" in finding.fix


def test_no_weights_at_all(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    only_error(check_folder(folder), "weights.no-weights")


def test_vision_model_without_processor_files(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", vision=True)
    (folder / "preprocessor_config.json").unlink()
    only_error(check_folder(folder), "weights.processor-missing")


def test_auto_map_code_file_missing(tmp_path: Path) -> None:
    config = {"model_type": "chatglm", "auto_map": {"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForCausalLM"}}
    folder = build_model(tmp_path / "m", config=config)
    result = check_folder(folder)
    only_error(result, "weights.code-missing")
    assert "modeling_chatglm.py" in result.findings[0].message
    (folder / "modeling_chatglm.py").write_text("# model code\n")
    facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
    assert facts is not None and facts.auto_map == config["auto_map"]
    assert run(facts, "weights.files").status is Status.PASS


def test_adapter_folder_is_not_a_model(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").rename(folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "zai-org/AutoGLM-Phone-9B"}))
    result = check_folder(folder)
    only_error(result, "weights.adapter-only")
    assert "zai-org/AutoGLM-Phone-9B" in result.findings[0].message


def test_weights_under_names_from_pretrained_ignores(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    (folder / "model.safetensors").rename(folder / "glm-9b-export.safetensors")
    assert "mv glm-9b-export.safetensors model.safetensors" in only_error(
        check_folder(folder), "weights.unexpected-names"
    )


def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    source = build_model(tmp_path / "src", shards=2, layers=4)
    return cache, build_hf_cache(cache, "zai-org/AutoGLM-Phone-9B", source)


def test_hf_cache_snapshot_linking_to_blobs_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cache, snapshot = hub_cache(tmp_path, monkeypatch)
    assert (snapshot / "model-00001-of-00002.safetensors").is_symlink()
    result = check_folder(snapshot)
    assert result.status is Status.PASS, [(f.code, f.message) for f in result.findings]


def test_hub_id_resolves_offline_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cache, snapshot = hub_cache(tmp_path, monkeypatch)
    facts = gather(GatherOptions(model="zai-org/AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None
    assert facts.source == "hub-cache" and facts.hub_id == "zai-org/AutoGLM-Phone-9B"
    assert facts.path == str(snapshot) and facts.exists and facts.revision == "a" * 40
    assert facts.parameter_count == 16 * 8 + 4 * (64 + 32)
    assert run(facts, "weights.files").status is Status.PASS
    path_result = run(facts, "weights.path")
    assert path_result.status is Status.PASS and "hub cache" in path_result.findings[0].message


def test_interrupted_download_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, snapshot = hub_cache(tmp_path, monkeypatch)
    blobs = cache / "models--zai-org--AutoGLM-Phone-9B" / "blobs"
    (blobs / ("f" * 64 + ".incomplete")).write_bytes(b"\0" * 1000)
    result = check_folder(snapshot)
    fix = only_error(result, "weights.download-incomplete")
    assert fix.startswith("hf download zai-org/AutoGLM-Phone-9B")
    assert "blobs/" + "f" * 64 + ".incomplete" in result.findings[0].message


def test_first_download_interrupted_before_any_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    blobs = cache / "models--zai-org--AutoGLM-Phone-9B" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("e" * 64 + ".incomplete")).write_bytes(b"\0" * 10)
    facts = gather(GatherOptions(model="zai-org/AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None and not facts.exists and len(facts.incomplete) == 1
    result = run(facts, "weights.path")
    assert only_error(result, "weights.hub-snapshot-missing").startswith("hf download zai-org/AutoGLM-Phone-9B")
    assert "interrupted download" in result.findings[0].message


def test_interrupted_local_dir_download(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    partial = folder / ".cache" / "huggingface" / "download"
    partial.mkdir(parents=True)
    (partial / "model-00003-of-00004.safetensors.incomplete").write_bytes(b"\0" * 10)
    only_error(check_folder(folder), "weights.download-incomplete")


def test_blob_deleted_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cache, snapshot = hub_cache(tmp_path, monkeypatch)
    (snapshot / "model-00002-of-00002.safetensors").resolve().unlink()
    result = check_folder(snapshot)
    assert "weights.broken-link" in codes(result) and "weights.shard-missing" in codes(result)
    assert result.status is Status.FAIL


def test_facts_for_other_checks(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", vision=True)
    facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
    assert facts is not None
    assert facts.vision and facts.model_type == "glm4v"
    assert facts.max_position_embeddings == 4096  # from text_config
    assert facts.torch_dtype == "bfloat16" and facts.num_key_value_heads == 1 and facts.num_hidden_layers == 2
    assert facts.bytes_by_dtype == {"BF16": (16 * 8 + 2 * (64 + 32)) * 2}
    assert facts.parameter_bytes == facts.bytes_by_dtype["BF16"]


def test_snapshot_round_trip_keeps_the_facts(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m", shards=2, layers=4)
    facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
    snap = Snapshot(python=PYTHON, model=facts)
    again = Snapshot.from_dict(json.loads(snap.to_json()))
    assert again.model == facts


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", *args, "--no-smoke", "--only", "weights.*", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODEL_WEIGHT_PATH", raising=False)
    folder = build_model(tmp_path / "model", shards=3, layers=6)
    code, report = cli(capsys, "--model", str(folder))
    assert code == 0 and report["status"] == "pass"
    assert {r["id"]: r["status"] for r in report["results"]} == {
        "weights.path": "pass",
        "weights.files": "pass",
        "weights.architecture": "pass",  # the doctor's own transformers knows llama
    }

    (folder / "model-00003-of-00003.safetensors").unlink()
    (folder / "model-00001-of-00003.safetensors").write_text(LFS_POINTER)
    code, report = cli(capsys, "--model", "model")  # relative to the working directory
    assert code == 1
    files = next(r for r in report["results"] if r["id"] == "weights.files")
    assert files["status"] == "fail"
    found = {f["code"] for f in files["findings"]}
    assert {"weights.lfs-pointer", "weights.shard-missing"} <= found
    assert all(f.get("fix") for f in files["findings"] if f["severity"] == "error")

    code, report = cli(capsys, "--model", str(tmp_path / "nowhere"))
    assert code == 1
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses == {"weights.path": "fail", "weights.files": "skip", "weights.architecture": "skip"}
    path_result = next(r for r in report["results"] if r["id"] == "weights.path")
    assert path_result["findings"][0]["code"] == "weights.path-missing"

    code, report = cli(capsys)
    assert code == 0 and {r["status"] for r in report["results"]} == {"skip"}
