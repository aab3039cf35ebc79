"""weights.path: where the model is, as the user named it (--model, config, MODEL_WEIGHT_PATH, hub id)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.configfile.facts import ConfigFacts
from autoglm_doctor.gather_options import GatherOptions
from autoglm_doctor.model import Status
from autoglm_doctor.probe.weights import ModelFacts, gather
from tests.helpers.model_folders import build_model
from tests.test_weights_files import codes, only_error, run


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MODEL_WEIGHT_PATH", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))


def config_at(path: Path, data: dict[str, object]) -> ConfigFacts:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["server:", "  port: 8000", "model:"] + [f"  {k}: {v}" for k, v in data.items()]
    path.write_text("\n".join(lines) + "\n")
    return ConfigFacts(path=str(path), data={"server": {"port": 8000}, "model": dict(data)})


def test_nothing_named_skips(tmp_path: Path) -> None:
    assert gather(GatherOptions(cwd=tmp_path)) is None
    result = run(None, "weights.path")
    assert result.status is Status.SKIP
    assert run(None, "weights.files").status is Status.SKIP


def test_model_relative_to_the_working_directory(tmp_path: Path) -> None:
    build_model(tmp_path / "models" / "glm")
    facts = gather(GatherOptions(model="models/glm", cwd=tmp_path))
    assert facts is not None and facts.exists and facts.path == str(tmp_path / "models" / "glm")
    assert facts.source == "--model"
    assert run(facts, "weights.path").status is Status.PASS


def test_missing_path_is_kept_and_fails(tmp_path: Path) -> None:
    facts = gather(GatherOptions(model="models/glm/nope", cwd=tmp_path))
    assert facts is not None and facts.path == str(tmp_path / "models" / "glm" / "nope") and not facts.exists
    result = run(facts, "weights.path")
    assert only_error(result, "weights.path-missing").startswith("pass --model")
    assert run(facts, "weights.files").status is Status.SKIP


def test_a_file_where_a_folder_is_expected(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    facts = gather(GatherOptions(model=str(folder / "model.safetensors"), cwd=tmp_path))
    assert facts is not None and facts.is_file
    assert str(folder) in only_error(run(facts, "weights.path"), "weights.not-a-folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folder(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "m")
    folder.chmod(0)
    try:
        facts = gather(GatherOptions(model=str(folder), cwd=tmp_path))
    finally:
        folder.chmod(0o755)
    assert facts is not None and facts.access_error
    only_error(run(facts, "weights.path"), "weights.unreadable")


def test_unreadable_folder_from_its_facts() -> None:
    facts = ModelFacts(
        path="/srv/models/glm", given="/srv/models/glm", named_by="--model", access_error="Permission denied"
    )
    assert "chmod -R a+rX /srv/models/glm" in only_error(run(facts, "weights.path"), "weights.unreadable")


def test_path_into_another_users_home(tmp_path: Path) -> None:
    facts = gather(GatherOptions(model="/home/alice-not-here/models/AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None
    result = run(facts, "weights.path")
    only_error(result, "weights.foreign-home")
    assert "/home/alice-not-here" in result.findings[0].message
    present = ModelFacts(path="/home/alice/m", given="/home/alice/m", named_by="--model", exists=True, home="/home/bob")
    result = run(present, "weights.path")
    assert result.status is Status.WARN and "weights.foreign-home" in codes(result)
    own = ModelFacts(path="/home/bob/m", given="/home/bob/m", named_by="--model", exists=True, home="/home/bob")
    assert run(own, "weights.path").status is Status.PASS


def test_windows_path_on_linux(tmp_path: Path) -> None:
    facts = gather(GatherOptions(model="D:\\models\\AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None
    if facts.host_platform == "win32":
        pytest.skip("a Windows path is at home on Windows")
    result = run(facts, "weights.path")
    only_error(result, "weights.foreign-path")
    assert "a Windows path" in result.findings[0].message


def test_env_var_referenced_but_unset(tmp_path: Path) -> None:
    config = config_at(tmp_path / "deploy.yaml", {"model_path": "${MODEL_WEIGHT_PATH}"})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path), config)
    assert facts is not None and facts.unset_vars == ["MODEL_WEIGHT_PATH"] and not facts.path
    result = run(facts, "weights.path")
    assert only_error(result, "weights.env-unset").startswith("export MODEL_WEIGHT_PATH=")
    location = result.findings[0].location
    assert location is not None and location.file == config.path and location.line == 4
    assert run(facts, "weights.files").status is Status.SKIP


@pytest.mark.parametrize("interpolated", ["", None])
def test_env_var_unset_and_interpolated_to_nothing(tmp_path: Path, interpolated: str | None) -> None:
    config = config_at(tmp_path / "deploy.yaml", {"model_path": '"${MODEL_WEIGHT_PATH}"'})
    config = ConfigFacts(path=config.path, data={"model": {"model_path": interpolated}})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path), config)
    assert facts is not None and facts.unset_vars == ["MODEL_WEIGHT_PATH"]
    only_error(run(facts, "weights.path"), "weights.env-unset")


def test_env_var_set_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = build_model(tmp_path / "m")
    monkeypatch.setenv("MODEL_WEIGHT_PATH", str(folder))
    config = config_at(tmp_path / "deploy.yaml", {"model_path": "${MODEL_WEIGHT_PATH}"})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path), config)
    assert facts is not None and facts.exists and facts.path == str(folder) and facts.source == "config"


def test_model_weight_path_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = build_model(tmp_path / "m")
    monkeypatch.setenv("MODEL_WEIGHT_PATH", str(folder))
    facts = gather(GatherOptions(cwd=tmp_path))
    assert facts is not None and facts.source == "MODEL_WEIGHT_PATH" and facts.exists


def test_relative_config_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    build_model(tmp_path / "conf" / "models" / "glm")
    (tmp_path / "work").mkdir()
    config = config_at(tmp_path / "conf" / "deploy.yaml", {"model_path": "models/glm"})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path / "work"), config)
    assert facts is not None and facts.exists
    assert facts.path == str(tmp_path / "conf" / "models" / "glm")
    assert facts.cwd_candidate == str(tmp_path / "work" / "models" / "glm")
    result = run(facts, "weights.path")
    assert result.status is Status.WARN and codes(result)[0] == "weights.relative-path"
    assert "(used here)" in result.findings[0].message


def test_relative_config_path_only_found_from_the_working_directory(tmp_path: Path) -> None:
    build_model(tmp_path / "work" / "models" / "glm")
    config = config_at(tmp_path / "conf" / "deploy.yaml", {"model_path": "models/glm"})
    facts = gather(GatherOptions(config=Path("../conf/deploy.yaml"), cwd=tmp_path / "work"), config)
    assert facts is not None and facts.exists and facts.path == str(tmp_path / "work" / "models" / "glm")
    result = run(facts, "weights.path")
    assert result.status is Status.WARN and "from the working directory" in result.findings[0].message


def test_relative_config_path_missing_everywhere(tmp_path: Path) -> None:
    config = config_at(tmp_path / "conf" / "deploy.yaml", {"model_path": "models/glm/v1"})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path), config)
    assert facts is not None and not facts.exists
    result = run(facts, "weights.path")
    only_error(result, "weights.path-missing")
    assert "from the working directory it would be" in result.findings[0].message


def test_tilde_in_the_config_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    build_model(tmp_path / "models" / "glm")
    config = config_at(tmp_path / "deploy.yaml", {"model_path": "~/models/glm"})
    facts = gather(GatherOptions(config=Path(config.path), cwd=tmp_path), config)
    assert facts is not None and facts.exists
    assert "weights.path-tilde" in codes(run(facts, "weights.path"))


def test_hub_id_not_in_the_cache(tmp_path: Path) -> None:
    facts = gather(GatherOptions(model="zai-org/AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None and facts.hub_id == "zai-org/AutoGLM-Phone-9B" and not facts.exists
    assert facts.path == str(tmp_path / "zai-org" / "AutoGLM-Phone-9B")  # the local reading is kept too
    assert facts.hub_cache == str(tmp_path / "empty-cache")
    fix = only_error(run(facts, "weights.path"), "weights.hub-not-cached")
    assert fix.startswith("hf download zai-org/AutoGLM-Phone-9B")


def test_existing_folder_wins_over_a_hub_id(tmp_path: Path) -> None:
    build_model(tmp_path / "zai-org" / "AutoGLM-Phone-9B")
    facts = gather(GatherOptions(model="zai-org/AutoGLM-Phone-9B", cwd=tmp_path))
    assert facts is not None and facts.source == "--model" and facts.exists and not facts.hub_id


def test_first_part_a_local_folder_means_a_path_not_a_hub_id(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    facts = gather(GatherOptions(model="models/glm", cwd=tmp_path))
    assert facts is not None and not facts.hub_id
    only_error(run(facts, "weights.path"), "weights.path-missing")


def test_cli_with_a_real_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy.yaml").write_text("server:\n  port: 8000\nmodel:\n  model_path: ${MODEL_WEIGHT_PATH}\n")
    args = ["check", "--config", "deploy.yaml", "--no-smoke", "--only", "weights.*", "--format", "json"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    path_result = next(r for r in report["results"] if r["id"] == "weights.path")
    (finding,) = path_result["findings"]
    assert finding["code"] == "weights.env-unset" and finding["location"]["line"] == 4
    monkeypatch.setenv("MODEL_WEIGHT_PATH", str(build_model(tmp_path / "glm")))
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["id"]: r["status"] for r in report["results"]} == {
        "weights.path": "pass",
        "weights.files": "pass",
        "weights.architecture": "pass",  # the doctor's own transformers knows llama
    }
