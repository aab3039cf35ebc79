"""End to end through `autoglm-doctor check`: discovery, a missing --config, and an unsafe YAML that never runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoglm_doctor.cli import main

RunJson = Callable[..., tuple[int, dict[str, Any]]]


def _result(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(r for r in report["results"] if r["id"] == check_id)


def test_python_tag_is_reported_and_never_runs(workdir: Path, run_json: RunJson) -> None:
    marker = workdir / "PWNED"
    config = workdir / "evil.yaml"
    config.write_text(
        f'model_path: /models/x\nport: !!python/object/apply:os.system ["touch {marker}"]\n'
        f'host: !!python/object/apply:subprocess.call [["touch", "{marker}"]]\n'
    )
    code, report = run_json("--config", str(config), "--only", "config.*")
    assert code == 1
    findings = _result(report, "config.syntax")["findings"]
    assert [(f["code"], f["location"]["line"]) for f in findings] == [
        ("config.unsafe-tag", 2),
        ("config.unsafe-tag", 3),
    ]
    assert not marker.exists()
    with pytest.raises(yaml.constructor.ConstructorError):  # what any safe loader does with it
        yaml.safe_load(config.read_text())
    assert not marker.exists()


def test_missing_config_is_a_finding_not_a_usage_error(workdir: Path, run_json: RunJson) -> None:
    code, report = run_json("--config", "nope.yaml", "--only", "config.*")
    assert code == 1
    syntax = _result(report, "config.syntax")
    assert syntax["status"] == "fail"
    (finding,) = syntax["findings"]
    assert finding["code"] == "config.missing" and "nope.yaml" in finding["message"]
    assert _result(report, "config.values")["status"] == "skip"


def test_autoglm_config_env_var(workdir: Path, run_json: RunJson, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "sub").mkdir()
    (workdir / "sub" / "deploy.json").write_text('{"model_path": "/m", "model_max_length": 512,}')
    (workdir / "autoglm.yaml").write_text("model_path: /m\n")  # loses to AUTOGLM_CONFIG
    monkeypatch.setenv("AUTOGLM_CONFIG", "sub/deploy.json")
    code, report = run_json("--only", "config.syntax")
    (finding,) = _result(report, "config.syntax")["findings"]
    assert code == 1 and finding["code"] == "config.trailing-comma"
    assert finding["location"] == {"file": str(workdir / "sub" / "deploy.json"), "line": 1, "column": 45}


@pytest.mark.parametrize("name", ["autoglm.yaml", "autoglm.yml", "autoglm.json"])
def test_discovered_in_the_working_directory(workdir: Path, run_json: RunJson, name: str) -> None:
    text = '{"model_max_length": 512}' if name.endswith("json") else "model_max_length: 512\n"
    (workdir / name).write_text(text)
    code, report = run_json("--only", "config.values")
    (finding,) = _result(report, "config.values")["findings"]
    assert code == 0 and finding["code"] == "config.not-recommended"
    assert finding["location"]["file"].endswith(name)


def test_yaml_wins_over_json_in_discovery(workdir: Path, run_json: RunJson) -> None:
    (workdir / "autoglm.json").write_text('{"port": 80}')
    (workdir / "autoglm.yaml").write_text("port: 8000\n")
    _, report = run_json("--only", "config.values")
    assert _result(report, "config.values")["findings"] == []


def test_no_config_skips(workdir: Path, run_json: RunJson) -> None:
    code, report = run_json("--only", "config.*")
    assert code == 0
    assert {r["id"]: r["status"] for r in report["results"]} == {
        "config.syntax": "skip",
        "config.env": "skip",
        "config.values": "skip",
        "config.request": "skip",
    }


def test_request_flag(workdir: Path, run_json: RunJson) -> None:
    request = workdir / "batch.json"
    request.write_text('[\n  {"id": "a", "data": [1, 2]},\n  {"id": "a", "data": [1, 2]}\n]\n')
    code, report = run_json("--request", str(request), "--only", "config.request")
    (finding,) = _result(report, "config.request")["findings"]
    assert code == 1 and finding["code"] == "config.request-duplicate-id" and finding["location"]["line"] == 3


def test_rich_output_shows_file_line_and_caret(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "autoglm.yaml").write_text("model:\n\tdevice_map: auto\n")
    code = main(["check", "--no-smoke", "--only", "config.syntax"])
    out = capsys.readouterr().out
    assert code == 1
    assert "autoglm.yaml:2:1" in out and "tab" in out
