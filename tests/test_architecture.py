"""weights.architecture, the torch family's build pairing and transformers' own accelerate floor.

Real venvs with hand-written dist-info; the library files the probe reads as text are either small
files in the shape of the old releases (tests/helpers/library_files.py) or the real files of the
transformers installed in this test environment. Every case runs through the CLI with --format json.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.knowledge import libraries as kb
from autoglm_doctor.probe import _script as probe
from tests.conftest import codes, result
from tests.helpers.library_files import add_transformers, add_transformers_5, add_vllm
from tests.helpers.model_folders import build_model
from tests.helpers.venvs import Venv

Run = Callable[..., tuple[int, dict[str, Any]]]
REPO = Path(__file__).resolve().parents[1]
NMS = "RuntimeError: operator torchvision::nms does not exist"


def finding(report: dict[str, Any], check_id: str, code: str) -> dict[str, Any]:
    [found] = [f for f in result(report, check_id)["findings"] if f["code"] == code]
    return found


def runnable(fix: str, venv: Venv) -> list[str]:
    """The fix is one shell command for the target's own pip, with arguments that parse."""
    argv = shlex.split(fix)
    assert argv[:4] == [str(venv.python), "-m", "pip", "install"], fix
    return argv


def stack(venv: Venv, *, transformers: str = "4.45.2", shaped: str | None = None, torch: str = "2.13.0+cpu") -> Venv:
    """A venv with torch, transformers (optionally with its shaped files) and what they need."""
    venv.add_torch(torch, cuda=None)
    add_transformers(venv, transformers, shaped=shaped)
    venv.add("tokenizers", "0.20.3")
    venv.add("huggingface-hub", "0.25.2", package="huggingface_hub")
    venv.add("pillow", "11.0.0", package="PIL")
    return venv


def with_torchvision(venv: Venv, version: str, torch_pin: str = "torch==2.13.0") -> Venv:
    """A torchvision release as pip leaves it: its metadata pins the torch it was built for."""
    venv.add("torchvision", version, ["numpy", torch_pin, "pillow!=8.3.*,>=5.3.0"])
    venv.add("numpy", "2.1.0")
    return venv


def glm4v(folder: Path) -> Path:
    return build_model(folder, vision=True)


# --- the transformers installed in this test environment: its real files ---------------------------


def test_registry_parser_reads_the_real_installed_transformers() -> None:
    spec = importlib.util.find_spec("transformers")  # locates it without running its __init__
    assert spec is not None and spec.origin is not None
    site = str(Path(spec.origin).parents[1])
    facts = probe.transformers_files([site])
    assert facts is not None and facts["problems"] == []
    assert {"llama", "llava", "glm4v"} <= set(facts["model_types"])
    assert "Glm4vProcessor" in facts["mappings"]["processor"]["glm4v"]
    assert any(c.endswith("Glm4vVideoProcessor") for c in facts["mappings"]["video_processor"]["glm4v"])
    assert facts["mappings"]["image_processor"]["llava"]
    assert facts["min_versions"]["accelerate"]  # ACCELERATE_MIN_VERSION, whatever this release says
    assert facts["dependencies"]["accelerate"].startswith("accelerate>=")


def test_line_reader_agrees_with_the_general_parser_on_the_real_files(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.find_spec("transformers")
    assert spec is not None and spec.origin is not None
    texts = [p.read_text(encoding="utf-8") for p in sorted((Path(spec.origin).parent / "models" / "auto").glob("*.py"))]
    families = (*probe.MAPPING_FAMILIES, "TOKENIZER")
    quick = [probe.mapping_names(text, family) for text in texts for family in families]
    monkeypatch.setattr(probe, "_one_line_entries", lambda text, start: None)
    assert quick == [probe.mapping_names(text, family) for text in texts for family in families]
    assert sum(len(found) for found in quick) > 1000


def test_old_release_shapes_parse() -> None:
    from tests.helpers import library_files as lf

    assert probe.mapping_names(lf.CONFIGURATION_4_45, "CONFIG") == {
        "albert": ["AlbertConfig"],
        "llama": ["LlamaConfig"],
        "llava": ["LlavaConfig"],
        "qwen2_vl": ["Qwen2VLConfig"],
    }  # MODEL_NAMES_MAPPING is not a registry of model types
    assert probe.mapping_names(lf.IMAGE_PROCESSING_4_57, "IMAGE_PROCESSOR")["glm4v"] == [
        "Glm4vImageProcessor",
        "Glm4vImageProcessorFast",
    ]
    assert probe.mapping_names(lf.IMAGE_PROCESSING_4_57, "PROCESSOR") == {}  # IMAGE_PROCESSOR is another registry
    multi = 'TOKENIZER_MAPPING_NAMES = OrderedDict(\n    [\n        (\n            "albert",\n            (\n'
    multi += '                "AlbertTokenizer" if is_sentencepiece_available() else None,\n'
    multi += (
        '                "AlbertTokenizerFast" if is_tokenizers_available() else None,\n            ),\n        ),\n'
    )
    multi += "    ]\n)\n"
    assert probe.mapping_names(multi, "TOKENIZER") == {"albert": ["AlbertTokenizer", "AlbertTokenizerFast"]}
    v5 = 'IMAGE_PROCESSOR_MAPPING_NAMES = OrderedDict(\n    [\n        ("glm4v", {"pil": "Glm4vImageProcessorPil", '
    v5 += (
        '"torchvision": "Glm4vImageProcessor"}),\n    ]\n)\nCONFIG_MAPPING_NAMES.update({"mlcd": "MLCDVisionConfig"})\n'
    )
    assert probe.mapping_names(v5, "IMAGE_PROCESSOR")["glm4v"] == [
        "pil:Glm4vImageProcessorPil",
        "torchvision:Glm4vImageProcessor",
    ]
    assert probe.mapping_names(v5, "CONFIG") == {"mlcd": ["MLCDVisionConfig"]}
    assert probe.min_versions(lf.IMPORT_UTILS_4_45) == {
        "accelerate": "0.26.0",
        "fsdp": "1.12.0",
        "gguf": "0.10.0",
        "xla_fsdpv2": "2.2.0",
    }
    assert probe.min_versions(lf.IMPORT_UTILS_4_35) == {}


# --- the generated tables ------------------------------------------------------------------------


def test_generator_reproduces_the_committed_tables_offline() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "knowledge_tables.py"), "generate", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert kb.first_release_knowing("glm4v") == "4.53.0"  # absent in 4.52.x, present in 4.53.0
    assert kb.first_release_knowing("llava") == "4.36.0"
    assert kb.first_release_with_video_processor("glm4v") == "4.53.0"
    assert kb.paired_version("torchvision", "2.13.0+cpu") == "0.28.0"
    assert kb.paired_version("torchvision", "2.6.0") == "0.21.0"
    table = (REPO / "src/autoglm_doctor/knowledge/transformers_registry.yaml").read_text(encoding="utf-8")
    assert table.startswith("# GENERATED by tools/knowledge_tables.py")
    assert 'collected: "' in table and '"4.30.0"' in table and '"5.24.0"' in table


def test_floors_come_from_each_release() -> None:
    rows = kb.generated_table("transformers_registry")["floors"]
    assert rows["4.35.0"]["min_versions"] == {} and rows["4.35.0"]["dependencies"]["accelerate"] == "accelerate>=0.20.3"
    assert rows["4.44.0"]["min_versions"]["accelerate"] == "0.21.0"
    assert rows["4.45.0"]["min_versions"]["accelerate"] == "0.26.0"
    assert rows["5.0.0"]["min_versions"]["accelerate"] == "1.1.0"


# --- the cases of the issue, through the CLI -----------------------------------------------------


def test_cuda_torchvision_beside_cpu_torch_fails_with_the_matching_build_as_fix(
    venv: Venv, workdir: Path, run_json: Run
) -> None:
    with_torchvision(stack(venv), "0.28.0+cu130")
    code, report = run_json("--python", str(venv.python), "--only", "packages.conflicts")
    assert code == 1
    assert codes(report, "packages.conflicts") == ["packages.torch-family-build"]  # pip check alone passes
    found = finding(report, "packages.conflicts", "packages.torch-family-build")
    assert NMS in found["message"]
    assert "0.28.0+cu130" in found["message"] and "torch 2.13.0+cpu" in found["message"]
    argv = runnable(found["fix"], venv)
    assert argv[4:] == [
        "--force-reinstall",
        "--no-deps",
        "torchvision==0.28.0+cpu",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
    ]


def test_matching_cpu_pair_passes(venv: Venv, workdir: Path, run_json: Run) -> None:
    with_torchvision(stack(venv), "0.28.0+cpu")
    code, report = run_json("--python", str(venv.python), "--only", "packages.conflicts")
    assert result(report, "packages.conflicts")["status"] == "pass", report
    assert code == 0


def test_untagged_pypi_torchvision_beside_cpu_torch_fails(venv: Venv, workdir: Path, run_json: Run) -> None:
    # `pip install torchvision` after a CPU torch: PyPI's untagged wheel is the CUDA 13.0 build
    with_torchvision(stack(venv), "0.28.0")
    _, report = run_json("--python", str(venv.python), "--only", "packages.conflicts")
    found = finding(report, "packages.conflicts", "packages.torch-family-build")
    assert "PyPI, untagged: cu130" in found["message"]
    assert "torchvision==0.28.0+cpu" in found["fix"]


def test_torchvision_for_another_torch_names_the_paired_release(venv: Venv, workdir: Path, run_json: Run) -> None:
    with_torchvision(stack(venv), "0.21.0+cpu", "torch==2.6.0")
    _, report = run_json("--python", str(venv.python), "--only", "packages.conflicts")
    found = finding(report, "packages.conflicts", "packages.torchvision-mismatch")
    assert "torch 2.13.0 pairs with torchvision 0.28.0" in found["message"]
    assert shlex.split(found["fix"])[-3:] == [
        "torchvision==0.28.0+cpu",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
    ]


@pytest.mark.parametrize("shaped", [None, "4.45"])
def test_glm4v_with_transformers_4_45_names_the_first_release(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path, shaped: str | None
) -> None:
    stack(venv, transformers="4.45.2", shaped=shaped)
    model = glm4v(tmp_path / "glm")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert code == 1
    found = finding(report, "weights.architecture", "weights.architecture-unknown")
    assert "glm4v first appears in transformers 4.53.0" in found["message"]
    assert "does not recognize this architecture" in found["message"]
    source = "models/auto" if shaped else "knowledge/transformers_registry.yaml"
    assert source in found["message"]
    assert runnable(found["fix"], venv)[4:] == ["transformers>=4.53.0"]
    assert found["location"]["file"] == str(model / "config.json")


def test_glm4v_without_torchvision_needs_it_for_the_video_processor(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path
) -> None:
    stack(venv, transformers="4.57.1", shaped="4.57")
    model = glm4v(tmp_path / "glm")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert code == 1
    assert sorted(codes(report, "weights.architecture")) == [
        "weights.architecture-known",
        "weights.processor-needs-torchvision",
    ]
    found = finding(report, "weights.architecture", "weights.processor-needs-torchvision")
    assert "Glm4vVideoProcessor" in found["message"] and "AutoProcessor" in found["message"]
    assert runnable(found["fix"], venv)[4:] == [
        "--no-deps",
        "torchvision==0.28.0+cpu",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
    ]
    # with the paired torchvision installed, the same stack passes
    venv.add("torchvision", "0.28.0+cpu", ["torch==2.13.0"])
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert result(report, "weights.architecture")["status"] == "pass"
    assert code == 0


def test_video_processor_from_the_table_when_files_are_unreadable(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path
) -> None:
    stack(venv, transformers="4.57.1")
    model = glm4v(tmp_path / "glm")
    _, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    found = finding(report, "weights.architecture", "weights.processor-needs-torchvision")
    assert "since transformers 4.53.0" in found["message"]


def test_vision_model_without_pillow(venv: Venv, workdir: Path, run_json: Run, tmp_path: Path) -> None:
    stack(venv, transformers="4.57.1", shaped="4.57")
    venv.add("torchvision", "0.28.0+cpu", ["torch==2.13.0"])
    for folder in venv.site_packages.glob("pillow*"):
        shutil.rmtree(folder)
    _, report = run_json(
        "--python", str(venv.python), "--model", str(glm4v(tmp_path / "glm")), "--only", "weights.architecture"
    )
    found = finding(report, "weights.architecture", "weights.processor-needs-pillow")
    assert runnable(found["fix"], venv)[4:] == ["pillow"]


def test_sentencepiece_only_tokenizer_without_sentencepiece(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path
) -> None:
    stack(venv, transformers="4.45.2", shaped="4.45")
    model = build_model(tmp_path / "llama", tokenizer=False)
    (model / "tokenizer.model").write_bytes(b"\n\x0e\n\x05<unk>\x15\x00\x00\x00\x00\x18\x02")
    (model / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert code == 1
    found = finding(report, "weights.architecture", "weights.tokenizer-needs-sentencepiece")
    assert "tokenizer.model only" in found["message"] and "LlamaTokenizer" in found["message"]
    assert runnable(found["fix"], venv)[4:] == ["sentencepiece"]
    assert found["location"]["file"] == str(model / "tokenizer.model")
    venv.add("sentencepiece", "0.2.0")
    venv.add("protobuf", "5.28.3", package="google")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert result(report, "weights.architecture")["status"] == "pass"
    assert code == 0


def test_tiktoken_vocabulary_without_tiktoken(venv: Venv, workdir: Path, run_json: Run, tmp_path: Path) -> None:
    stack(venv, transformers="4.45.2", shaped="4.45")
    model = build_model(tmp_path / "qwen", tokenizer=False)
    (model / "qwen.tiktoken").write_text("IQ== 0\n")
    _, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    found = finding(report, "weights.architecture", "weights.tokenizer-needs-tiktoken")
    assert runnable(found["fix"], venv)[4:] == ["tiktoken"]


@pytest.mark.parametrize("serves", [True, False])
def test_vllm_registry_decides_the_served_side(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path, serves: bool
) -> None:
    stack(venv, transformers="4.57.1", shaped="4.57")
    venv.add("torchvision", "0.28.0+cpu", ["torch==2.13.0"])
    add_vllm(venv, "0.8.5", glm4v=serves)
    model = glm4v(tmp_path / "glm")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    if serves:
        assert "weights.architecture-served" in codes(report, "weights.architecture")
        assert code == 0
        return
    found = finding(report, "weights.architecture", "weights.architecture-unserved")
    assert "vLLM 0.8.5 does not serve Glm4vForConditionalGeneration" in found["message"]
    assert "vllm/model_executor/models/registry.py" in found["message"]
    assert runnable(found["fix"], venv)[4:] == ["--upgrade", "vllm"]
    assert code == 1


# --- accelerate: the floor is the installed transformers' own -----------------------------------


def _device_map_config(workdir: Path) -> Path:
    config = workdir / "autoglm.yaml"
    config.write_text("device_map: cuda:0\n", encoding="utf-8")
    return config


@pytest.mark.parametrize("shaped", [None, "4.35"])
def test_transformers_4_35_with_accelerate_0_25_and_device_map_passes(
    venv: Venv, workdir: Path, run_json: Run, shaped: str | None
) -> None:
    stack(venv, transformers="4.35.0", shaped=shaped, torch="2.1.2")
    venv.add("accelerate", "0.25.0")
    code, report = run_json(
        "--python", str(venv.python), "--config", str(_device_map_config(workdir)), "--only", "packages.versions"
    )
    assert result(report, "packages.versions")["status"] in ("pass", "warn"), report
    assert "packages.below-transformers-floor" not in codes(report, "packages.versions")
    assert code == 0


@pytest.mark.parametrize("shaped", [None, "4.45"])
def test_transformers_4_45_with_accelerate_0_25_and_device_map_fails(
    venv: Venv, workdir: Path, run_json: Run, shaped: str | None
) -> None:
    stack(venv, transformers="4.45.2", shaped=shaped)
    venv.add("accelerate", "0.25.0")
    code, report = run_json(
        "--python", str(venv.python), "--config", str(_device_map_config(workdir)), "--only", "packages.versions"
    )
    assert code == 1
    found = finding(report, "packages.versions", "packages.below-transformers-floor")
    assert "accelerate 0.25.0 is older than 0.26.0" in found["message"]
    assert "the config sets device_map" in found["message"]
    where = "ACCELERATE_MIN_VERSION in " if shaped else "transformers_registry.yaml, row 4.45.0"
    assert where in found["message"]
    assert runnable(found["fix"], venv)[4:] == ["accelerate>=0.26.0"]


def test_accelerate_without_device_map_is_not_held_to_the_floor(venv: Venv, workdir: Path, run_json: Run) -> None:
    stack(venv, transformers="4.45.2", shaped="4.45")
    venv.add("accelerate", "0.25.0")
    code, report = run_json("--python", str(venv.python), "--only", "packages.versions")
    assert "packages.below-transformers-floor" not in codes(report, "packages.versions")
    assert code == 0


# --- no false alarm on the healthy environments of the other tests -------------------------------


def test_healthy_stack_with_a_llama_folder_passes(
    healthy_venv: Venv, workdir: Path, run_json: Run, tmp_path: Path
) -> None:
    model = build_model(tmp_path / "llama")
    code, report = run_json(
        "--python", str(healthy_venv.python), "--model", str(model), "--only", "weights.*,packages.*"
    )
    failing = {r["id"]: r["findings"] for r in report["results"] if r["status"] in ("fail", "error")}
    assert failing == {}
    assert codes(report, "weights.architecture") == ["weights.architecture-known"]
    assert code == 0


def test_this_environment_passes_for_glm4v(workdir: Path, run_json: Run, tmp_path: Path) -> None:
    # the real transformers installed here knows glm4v; its processor needs torchvision and Pillow
    model = glm4v(tmp_path / "glm")
    _, report = run_json("--python", sys.executable, "--model", str(model), "--only", "weights.architecture")
    known = finding(report, "weights.architecture", "weights.architecture-known")
    assert "its registry" in known["message"]


def test_explain_weights_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "weights.architecture"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("weights.architecture: Installed stack can load this model")
    assert "Needs:    python, model-folder" in out
    assert (REPO / "docs" / "checks" / "weights.architecture.md").is_file()


def test_snapshot_round_trip_keeps_library_facts(tmp_path: Path, venv: Venv) -> None:
    stack(venv, transformers="4.57.1", shaped="4.57")
    out = tmp_path / "snap.json"
    assert main(["snapshot", "--python", str(venv.python), "-o", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert "glm4v" in data["libraries"]["transformers"]["model_types"]
    assert data["libraries"]["transformers"]["min_versions"]["accelerate"] == "0.26.0"
    # with a model, the processor registries keep that model type's entries only
    model = glm4v(tmp_path / "glm")
    assert main(["snapshot", "--python", str(venv.python), "--model", str(model), "-o", str(out)]) == 0
    mappings = json.loads(out.read_text(encoding="utf-8"))["libraries"]["transformers"]["mappings"]
    assert mappings["video_processor"] == {"glm4v": ["Glm4vVideoProcessor"]}
    assert mappings["image_processor"] == {"glm4v": ["Glm4vImageProcessor", "Glm4vImageProcessorFast"]}


def test_fix_pins_the_same_pairing(venv: Venv, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_torchvision(stack(venv), "0.28.0+cu130")
    venv.add("torchaudio", "2.11.1", ["torch>=2.11"])  # pure Python since 2.11.1: any build of torch >= 2.11
    args = ["check", "--no-smoke", "--format", "json", "--python", str(venv.python), "--only", "packages.*"]
    assert main([*args, "--fix", "--fix-output", "fix.txt"]) == 1
    capsys.readouterr()
    lines = (workdir / "fix.txt").read_text(encoding="utf-8").splitlines()
    [vision] = [line for line in lines if line.startswith("torchvision")]
    assert vision.startswith("torchvision==0.28.0+cpu")
    assert "packages.torch-family-build" in vision
    assert any(line.startswith("torchaudio==2.11.1") for line in lines)  # kept: it fits this torch
    assert any("https://download.pytorch.org/whl/cpu" in line for line in lines)


def test_sglang_entry_classes_decide_the_served_side(venv: Venv, workdir: Path, run_json: Run, tmp_path: Path) -> None:
    stack(venv, transformers="4.57.1", shaped="4.57")
    with_torchvision(venv, "0.28.0+cpu")
    models = "sglang/srt/models/"
    venv.add(
        "sglang",
        "0.4.6",
        files={
            models + "llama.py": "class LlamaForCausalLM:\n    pass\n\n\nEntryClass = LlamaForCausalLM\n",
            models + "qwen2_vl.py": "EntryClass = [Qwen2VLForConditionalGeneration]\n",
        },
    )
    model = glm4v(tmp_path / "glm")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    found = finding(report, "weights.architecture", "weights.architecture-unserved")
    assert "SGLang 0.4.6 does not serve Glm4vForConditionalGeneration" in found["message"]
    assert code == 1
    (venv.site_packages / models / "glm4v.py").write_text("EntryClass = [Glm4vForConditionalGeneration]\n")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert "weights.architecture-served" in codes(report, "weights.architecture")
    assert code == 0


def test_audio_feature_extractor_needs_what_it_declares(
    venv: Venv, workdir: Path, run_json: Run, tmp_path: Path
) -> None:
    venv.add_torch("2.13.0+cpu", cuda=None)
    add_transformers_5(venv, "5.2.0")
    model = tmp_path / "melody"
    model.mkdir()
    config = {"model_type": "musicgen_melody", "architectures": ["MusicgenMelodyForConditionalGeneration"]}
    (model / "config.json").write_text(json.dumps(config))
    (model / "preprocessor_config.json").write_text(
        json.dumps({"feature_extractor_type": "MusicgenMelodyFeatureExtractor"})
    )
    (model / "tokenizer.json").write_text("{}")
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert code == 1
    found = finding(report, "weights.architecture", "weights.processor-needs-library")
    assert "torchaudio is not installed" in found["message"] and "MusicgenMelodyFeatureExtractor" in found["message"]
    assert runnable(found["fix"], venv)[4:] == ["--no-deps", "torchaudio==2.11.1"]  # pure Python since 2.11.1
    assert "weights.processor-needs-pillow" not in codes(report, "weights.architecture")  # no image processor
    venv.add("torchaudio", "2.11.1", ["torch>=2.11"])
    code, report = run_json("--python", str(venv.python), "--model", str(model), "--only", "weights.architecture")
    assert result(report, "weights.architecture")["status"] == "pass"
    assert code == 0
