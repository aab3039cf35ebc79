"""Without --pack the doctor finds the machine's role from evidence, names it, and shows only what applies.

Three machines built for real: a server venv (vLLM's real dist-info and pins) with the launch command in
the working directory, a client venv (openai, Pillow, phone_agent) with adb on PATH, and the bundled
in-process example; and an empty venv, where the doctor asks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor.cli import main
from autoglm_doctor.probe.collect import ENV_VARS
from autoglm_doctor.probe.gpu import NVML_FIXTURE_ENV
from tests.helpers.gpu import fixture
from tests.helpers.served import server_venv, write_launch
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]
ROOT = Path(__file__).resolve().parents[1]
ADB = ROOT / "tests" / "fixtures" / "adb"


@pytest.fixture(autouse=True)
def _no_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        if name.startswith("PHONE_AGENT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(NVML_FIXTURE_ENV, str(fixture("no-driver")))


def ids(report: dict[str, Any]) -> set[str]:
    return {r["id"] for r in report["results"]}


def test_server_venv_with_a_launch_file_is_the_server(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    server_venv(venv)
    write_launch(workdir, "zai-org/AutoGLM-Phone-9B")
    code, report = run_json("--python", str(venv.python))
    assert report["packs"] == ["open-autoglm-server"]
    assert report["role"]["chosen_by"] == "evidence"
    assert report["role"]["evidence"] == [
        "serve.sh starts vllm (found in the working directory, read as --config)",
        "vllm 0.12.0 is installed in the target environment",
    ]
    assert report["config"] == "serve.sh"
    shown = ids(report)
    assert not shown & {"devices.adb", "devices.hdc", "devices.ios", "service.agent-step", "smoke.load-infer"}
    assert {"cuda.driver", "weights.architecture", "config.values"} <= shown
    left_out = {item["id"] for item in report["not_applicable"]}
    assert left_out == {"devices.adb", "devices.hdc", "devices.ios", "service.agent-step", "config.request"}
    assert all("vLLM/SGLang model server" in item["reason"] for item in report["not_applicable"])


def test_client_venv_with_adb_is_the_phone_client(
    workdir: Path, run_json: RunJson, venv: Venv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv.add("openai", "2.9.0")
    venv.add("Pillow", "12.0.0", package="PIL")
    venv.add("phone-agent", "0.1.0", ["openai>=2.9.0", "Pillow>=12.0.0"], package="phone_agent")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + (ADB / "fake_adb.py").read_text())
    adb.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_FIXTURE", str(ADB / "ready.json"))
    code, report = run_json("--python", str(venv.python))
    assert report["packs"] == ["open-autoglm-phone"]
    assert report["role"]["evidence"] == ["phone_agent is installed in the target environment"]
    shown = ids(report)
    assert not shown & {
        "cuda.driver",
        "cuda.torch-build",
        "cuda.memory",
        "weights.path",
        "weights.files",
        "smoke.load-infer",
        "config.syntax",
        "config.values",
        "system.container",
    }
    assert {"devices.adb", "service.endpoint", "packages.required", "config.env"} <= shown
    assert result_status(report, "devices.adb") != "skip"
    # nothing shown points the client at a model, a config file or torch
    skipped = [f["message"] for r in report["results"] if r["status"] == "skip" for f in r["findings"]]
    for wrong in ("--model PATH", "autoglm.yaml", "torch is not installed"):
        assert not any(wrong in m for m in skipped), (wrong, skipped)


def result_status(report: dict[str, Any], check_id: str) -> str:
    return str(next(r for r in report["results"] if r["id"] == check_id)["status"])


def test_client_settings_alone_say_client(workdir: Path, run_json: RunJson, venv: Venv, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PHONE_AGENT_DEVICE_TYPE", "adb")
    code, report = run_json("--python", str(venv.python), "--only", "python.*")
    assert report["packs"] == ["open-autoglm-phone"]
    assert report["role"]["evidence"] == ["PHONE_AGENT_DEVICE_TYPE is set"]


def test_several_roles_merge_and_pack_still_overrides(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    server_venv(venv)
    venv.add("phone-agent", "0.1.0", package="phone_agent")
    write_launch(workdir, "zai-org/AutoGLM-Phone-9B")
    code, report = run_json("--python", str(venv.python), "--only", "python.*")
    assert report["packs"] == ["open-autoglm-server", "open-autoglm-phone"]
    code, report = run_json("--python", str(venv.python), "--only", "python.*", "--pack", "open-autoglm")
    assert report["packs"] == ["open-autoglm"]
    assert report["role"] == {"packs": ["open-autoglm"], "chosen_by": "--pack", "evidence": []}


def test_no_evidence_asks_with_the_three_commands(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", "--no-smoke", "--python", str(venv.python)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("which deployment is this machine?")  # asked plainly: no usage line, no "Error:"
    for command in ("--pack open-autoglm-server", "--pack open-autoglm-phone", "--pack open-autoglm "):
        assert command in err


def test_not_applicable_checks_are_one_line_and_v_lists_them(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    venv.add("phone-agent", "0.1.0", package="phone_agent")
    main(["check", "--no-smoke", "--python", str(venv.python), "--skip", "devices.*,service.*"])
    out = capsys.readouterr().out
    assert "role: open-autoglm-phone, because phone_agent is installed in the target environment" in out
    assert "checks do not apply to open-autoglm-phone (-v lists them)" in out
    assert "cuda.driver" not in out and "smoke.load-infer" not in out
    main(["check", "--no-smoke", "-v", "--python", str(venv.python), "--skip", "devices.*,service.*"])
    out = capsys.readouterr().out
    assert "cuda.driver (NVIDIA driver and GPUs): not part of the phone-agent client" in out
    # one left out is said in the singular (QA P3.17: "1 check do not apply")
    main(["check", "--no-smoke", "--python", str(venv.python), "--only", "cuda.drive*,python.*"])
    out = capsys.readouterr().out
    assert "1 check does not apply to open-autoglm-phone (-v lists them)" in out
    assert "1 check do not apply" not in out
    # an id named in --only runs whatever the role
    main(["check", "--no-smoke", "--format", "json", "--python", str(venv.python), "--only", "cuda.driver"])
    report = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in report["results"]] == ["cuda.driver"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_bundled_example_is_in_process(tmp_path: Path) -> None:
    example = tmp_path / "deployment"
    shutil.copytree(ROOT / "examples" / "deployment", example, ignore=shutil.ignore_patterns("model"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoglm_doctor",
            "check",
            "--no-smoke",
            "--format",
            "json",
            "--python",
            sys.executable,
            "--config",
            "autoglm.yaml",
        ],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    report = json.loads(proc.stdout)
    assert report["packs"] == ["open-autoglm"]
    assert report["role"]["evidence"] == ["autoglm.yaml is the in-process service's config (--config)"]
    assert not ids(report) & {"devices.adb", "devices.hdc", "devices.ios", "service.agent-step"}


def test_a_shown_skip_says_what_it_needs_in_terms_of_the_server(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    venv.add("vllm", "0.12.0")  # the engine without torch, and no launch command
    code, report = run_json("--python", str(venv.python))
    assert report["packs"] == ["open-autoglm-server"]
    skipped = {r["id"]: r["findings"][0]["message"] for r in report["results"] if r["status"] == "skip"}
    assert skipped["cuda.torch-build"].startswith("torch is not installed in the target environment (vLLM and SGLang")
    assert "pass --config serve.sh" in skipped["weights.path"] and "pass --config serve.sh" in skipped["config.syntax"]
    assert not any("autoglm.yaml" in m or "--model PATH" in m for m in skipped.values()), skipped


def test_junit_lists_the_checks_that_do_not_apply_as_skipped(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ET

    venv.add("phone-agent", "0.1.0", package="phone_agent")
    main(["check", "--no-smoke", "--format", "junit", "--python", str(venv.python), "--only", "cuda.*,python.*"])
    suite = ET.fromstring(capsys.readouterr().out).find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {"cuda.driver", "cuda.memory", "python.version"} <= set(cases)
    skipped = cases["cuda.driver"].find("skipped")
    assert skipped is not None and skipped.get("message") == "does not apply: not part of the phone-agent client"
    assert suite.get("tests") == str(len(cases))


def test_markdown_names_the_role_and_what_was_left_out(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    venv.add("phone-agent", "0.1.0", package="phone_agent")
    main(["check", "--no-smoke", "--format", "markdown", "--python", str(venv.python), "--only", "cuda.*,python.*"])
    out = capsys.readouterr().out
    assert "| Role | phone_agent is installed in the target environment |" in out
    assert "| Not part of this role (not run) | `cuda.driver`, " in out


def test_a_missing_config_is_a_finding_not_the_role_question(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    code, report = run_json("--python", str(venv.python), "--config", "nope.yaml", "--only", "config.syntax")
    assert code == 1  # DESIGN: a missing --config is a finding (exit 1), not a usage error
    assert report["packs"] == ["open-autoglm"]
    assert [f["code"] for f in report["results"][0]["findings"]] == ["config.missing"]
    code, report = run_json("--python", str(venv.python), "--config", "serve.sh", "--only", "config.syntax")
    assert (code, report["packs"]) == (1, ["open-autoglm-server"])


def test_any_shell_file_that_starts_sglang_is_the_launch_command(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    (workdir / "notes.sh").write_text("#!/bin/sh\necho building\n")
    (workdir / "run_glm.sh").write_text(
        "#!/bin/sh\npython3 -m sglang.launch_server --model-path zai-org/AutoGLM-Phone-9B --port 30000 \\\n"
        "  --served-model-name autoglm-phone-9b --context-length 25480\n"
    )
    code, report = run_json("--python", str(venv.python), "--only", "python.*")
    assert report["role"]["evidence"] == ["run_glm.sh starts sglang (found in the working directory, read as --config)"]
    assert report["config"] == "run_glm.sh"


@pytest.mark.parametrize(
    ("name", "text", "engine"),
    [
        ("vllm.yaml", "model: zai-org/AutoGLM-Phone-9B\nmax-model-len: 8192\ngpu-memory-utilization: 0.9\n", "vllm"),
        ("sglang.json", '{"model-path": "zai-org/AutoGLM-Phone-9B", "context-length": 8192}\n', "sglang"),
    ],
)
def test_a_file_of_engine_flags_is_server_evidence(
    workdir: Path, run_json: RunJson, venv: Venv, name: str, text: str, engine: str
) -> None:
    """vLLM's --config file (keys that are its flags) says server, through the same classifier as a launch command."""
    (workdir / name).write_text(text)
    code, report = run_json("--python", str(venv.python), "--config", name, "--only", "python.*")
    assert report["packs"] == ["open-autoglm-server"]
    assert report["role"]["evidence"] == [f"{name} holds the flags of {engine}"]


def test_the_doctors_own_config_is_not_sglangs_flag_file(workdir: Path, run_json: RunJson, venv: Venv) -> None:
    """autoglm.yaml's model_path is SGLang's --model-path once spelled with dashes: its other keys say whose it is."""
    (workdir / "autoglm.yaml").write_text("model_path: zai-org/AutoGLM-Phone-9B\ncontext-length: 8192\ndevice: cuda\n")
    for args in (("--config", "autoglm.yaml"), ()):  # named, and found in the working directory
        code, report = run_json("--python", str(venv.python), *args, "--only", "python.*")
        assert report["packs"] == ["open-autoglm"]
        (evidence,) = report["role"]["evidence"]
        assert evidence.split()[0].endswith("autoglm.yaml") and "is the in-process service's config" in evidence


def test_a_setup_script_that_installs_vllm_is_not_a_launch_file(
    workdir: Path, venv: Venv, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "setup.sh").write_text("#!/bin/sh\npip install vllm==0.12.0 sglang\nuv pip install 'vllm[audio]'\n")
    assert main(["check", "--no-smoke", "--python", str(venv.python)]) == 2
    assert capsys.readouterr().err.startswith("which deployment is this machine?")
    (workdir / "setup.sh").write_text("#!/bin/sh\npip install vllm==0.12.0 && vllm serve zai-org/AutoGLM-Phone-9B\n")
    assert main(["check", "--no-smoke", "--format", "json", "--python", str(venv.python), "--only", "python.*"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["role"]["evidence"] == ["setup.sh starts vllm (found in the working directory, read as --config)"]
