"""What the server role reads and how it answers, through the CLI (QA items P1.2, P1.3, P2.7, P2.8, P2.10, P2.11,
P3.21, P3.22).

Real venvs with real dist-info, real launch files in a real working directory; only NVML is a fixture.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.conftest import codes, result
from tests.helpers.gpu import fixture
from tests.helpers.served import build_autoglm_phone, server_venv, write_launch
from tests.helpers.venvs import Venv
from tests.test_roles import _no_client_settings  # noqa: F401 - the same clean environment (autouse)

RunJson = Callable[..., tuple[int, dict[str, Any]]]


DOCKER_LAUNCHES = {
    "vllm": "docker run --gpus all -p 8000:8000 vllm/vllm-openai:v0.15.1 \\\n"
    "  --model /models/AutoGLM-Phone-9B --served-model-name autoglm-phone-9b\n",
    "sglang": "docker run --gpus all --shm-size 32g -p 30000:30000 --ipc=host lmsysorg/sglang:latest \\\n"
    "  python3 -m sglang.launch_server --model-path /models/AutoGLM-Phone-9B --port 30000\n",
}


@pytest.mark.parametrize("engine", sorted(DOCKER_LAUNCHES))
def test_a_serve_sh_that_runs_the_engines_docker_image_is_the_server(
    engine: str, workdir: Path, run_json: RunJson, venv: Venv
) -> None:
    """P1.2: the image form in serve.sh is server evidence (the empty venv used to get the role question)."""
    (workdir / "serve.sh").write_text("#!/bin/sh\n" + DOCKER_LAUNCHES[engine])
    code, report = run_json("--python", str(venv.python), "--only", "python.*")
    assert report["packs"] == ["open-autoglm-server"]
    evidence = f"serve.sh starts {engine} (found in the working directory, read as --config)"
    assert report["role"]["evidence"] == [evidence]
    assert report["config"] == "serve.sh"


def test_a_yaml_launch_file_given_as_an_argument_is_the_server(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """P1.3: vLLM's --config YAML named on the command line is linted as the server's, not the in-process config."""
    (workdir / "deploy").mkdir()
    (workdir / "deploy" / "vllm2.yaml").write_text(
        "model: /models/glm\nserved-model-name: autoglm-phone-9b\nmax-model-len: 25480\ngpu-memory-utilisation: 0.9\n"
    )
    code = main(["check", "--only", "config", "--no-smoke", "--no-env", "--format", "json", "deploy/vllm2.yaml"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["packs"] == ["open-autoglm-server"]
    assert report["role"]["evidence"] == ["deploy/vllm2.yaml holds the flags of vllm"]
    assert "--gpu-memory-utilisation" in result(report, "config.values")["findings"][0]["message"]


BAD_REQUEST = '[{"id": 1, "data": [1.0, 2.0]}, {"id": 1, "data": [3.0, 4.0]}]\n'


def test_an_explicit_request_is_linted_on_the_server_role(
    workdir: Path, run_json: RunJson, venv: Venv, tmp_path: Path
) -> None:
    """P2.7: --request names a check by its input: config.request runs whatever the role (it used to pass, exit 0)."""
    server_venv(venv)
    write_launch(workdir, "zai-org/AutoGLM-Phone-9B")
    request = tmp_path / "req-bad.json"
    request.write_text(BAD_REQUEST)
    code, report = run_json("--python", str(venv.python), "--only", "config.*", "--request", str(request))
    assert report["packs"] == ["open-autoglm-server"]
    assert code == 1
    assert result(report, "config.request")["status"] == "fail"
    assert sorted(codes(report, "config.request")) == ["config.request-duplicate-id", "config.request-role"]
    assert "config.request" not in {item["id"] for item in report.get("not_applicable", [])}
    # without --request the in-process role's check stays out of the server's report
    code, report = run_json("--python", str(venv.python), "--only", "config.*")
    assert "config.request" in {item["id"] for item in report["not_applicable"]}


def test_config_values_with_no_launch_command_skips_and_strict_fails(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    """P2.8: server, no launch file, no config: config.values tested nothing, so it skips and --strict fails."""
    server_venv(venv)
    args = ["check", "--no-smoke", "--python", str(venv.python), "--only", "config.values", "--format", "json"]
    assert main([*args, "--strict"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["packs"] == ["open-autoglm-server"] and report["status"] == "fail"
    skipped = result(report, "config.values")
    assert skipped["status"] == "skip"
    message = skipped["findings"][0]["message"]
    assert message.startswith("no launch command (pass --config serve.sh")
    assert "vllm 0.12.0's torch, transformers and Python pins hold" in message
    assert main(args) == 0  # not strict: a skip does not fail the run
    capsys.readouterr()


def test_config_values_with_no_config_still_reports_a_broken_vllm_pin(
    workdir: Path, run_json: RunJson, venv: Venv
) -> None:
    """The one thing config.values compares without a config (vLLM's torch pin) is still a finding, not a skip."""
    server_venv(venv, torch="2.8.0")
    code, report = run_json("--python", str(venv.python), "--only", "config.values")
    assert result(report, "config.values")["status"] == "fail"
    assert codes(report, "config.values") == ["config.vllm-torch-pin"]


SHELL_LAUNCH = """#!/bin/sh
MODEL=/models/glm
export PORT=8000
vllm serve $MODEL --served-model-name autoglm-phone-9b --max-model-len 25480 --port "$PORT" \\
  --api-key "$VLLM_API_KEY" --download-dir $HF_DIR --chat-template '$NOT_A_VARIABLE'
"""


def test_shell_launch_file_dollar_variables_are_the_shells(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """P2.10: `$VAR` and `"$VAR"` in serve.sh are the shell's: no "only ${NAME} forms" warning; unset is unset."""
    (workdir / "serve.sh").write_text(SHELL_LAUNCH)
    for name in ("VLLM_API_KEY", "HF_DIR", "MODEL", "PORT", "NOT_A_VARIABLE"):
        monkeypatch.delenv(name, raising=False)
    args = ["check", "--only", "config.env", "--no-smoke", "--format", "json", "-v", "serve.sh"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    findings = result(report, "config.env")["findings"]
    assert "config.env-unbraced" not in {f["code"] for f in findings}
    unset = {(f["location"]["line"], f["location"]["column"]): f["message"] for f in findings}
    # the script sets MODEL and PORT itself; '$NOT_A_VARIABLE' is single-quoted: literal in the shell
    assert sorted(unset) == [(5, 14), (5, 44)], findings
    assert unset[(5, 14)].startswith("environment variable VLLM_API_KEY is not set and $VLLM_API_KEY has no default")
    assert "the shell expands it to nothing" in unset[(5, 44)]
    # $MODEL is what the script set it to, whatever the environment holds
    main(["check", "--only", "weights.path", "--no-smoke", "--format", "json", "serve.sh"])
    [finding] = result(json.loads(capsys.readouterr().out), "weights.path")["findings"]
    assert finding["message"].startswith("model in serve.sh is '/models/glm'"), finding
    # set: resolved, and a secret's value never reaches the report
    monkeypatch.setenv("VLLM_API_KEY", "sk-live-0123456789abcdef")
    monkeypatch.setenv("HF_DIR", "/data/hf")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert result(json.loads(out), "config.env")["status"] == "pass"
    assert "sk-live-0123456789abcdef" not in out


def test_a_snapshot_holds_the_launch_command_check_would_find(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """P2.11: `snapshot` in the serve.sh folder captures serve.sh; `check --snapshot` then judges cuda.memory."""
    server_venv(venv)
    model = build_autoglm_phone(workdir / "AutoGLM-Phone-9B")
    write_launch(workdir, model)
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("rtx4090-headless")))
    node = workdir.parent / "node.json"
    assert main(["snapshot", "--python", str(venv.python), "-o", str(node)]) == 0
    snap = json.loads(node.read_text())
    assert snap["config"]["path"] == "serve.sh"
    elsewhere = workdir.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    main(["check", "--snapshot", str(node), "--only", "cuda.memory", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["config"] == "serve.sh" and report["packs"] == ["open-autoglm-server"]
    memory = result(report, "cuda.memory")
    assert memory["status"] != "skip", memory
    assert any("RTX 4090" in f["message"] for f in memory["findings"]), memory


def test_a_request_file_run_does_not_ask_for_the_config_that_exists(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """P3.21: linting a request file (pre-commit), the config checks' skips name why, not "add ./autoglm.yaml"."""
    (workdir / "autoglm.yaml").write_text("model_path: /models/glm\n")
    (workdir / "autoglm-request.json").write_text(BAD_REQUEST)
    code = main(["check", "--only", "config", "--no-smoke", "--no-env", "--format", "json", "autoglm-request.json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and result(report, "config.request")["status"] == "fail"
    skips = [f["message"] for r in report["results"] if r["status"] == "skip" for f in r["findings"]]
    assert skips and not any("add ./autoglm.yaml" in m for m in skips), skips
    assert all(m.startswith("autoglm-request.json is a request JSON, linted by config.request") for m in skips)


def test_several_files_as_json_are_one_document(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """P3.22: `--format json` over several files prints one JSON array of reports; one file stays one object."""
    (workdir / "autoglm.yaml").write_text("model_path: /models/glm\nmodel_max_lenght: 4096\n")
    (workdir / "autoglm-request.json").write_text(BAD_REQUEST)
    args = ["check", "--only", "config", "--no-smoke", "--no-env", "--format", "json"]
    code = main([*args, "autoglm.yaml", "autoglm-request.json"])
    reports = json.loads(capsys.readouterr().out)
    assert code == 1
    assert isinstance(reports, list) and len(reports) == 2
    assert [r["schema"] for r in reports] == ["autoglm-doctor/report@1"] * 2
    assert reports[0]["config"] == "autoglm.yaml"
    assert result(reports[1], "config.request")["status"] == "fail"
    main([*args, "autoglm.yaml"])
    single = json.loads(capsys.readouterr().out)
    assert isinstance(single, dict) and single["schema"] == "autoglm-doctor/report@1"
