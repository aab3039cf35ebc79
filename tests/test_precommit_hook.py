"""The pre-commit hook, through `pre-commit try-repo` on a scratch repository with several configs.

The manifest has two hooks with one entry: ``autoglm-doctor-config`` (``language: python``: pre-commit
pip-installs the doctor into its own env) and ``autoglm-doctor-config-system`` (the autoglm-doctor
on PATH, as installed with pipx). Offline, pre-commit cannot pip-install the python one (the
runtime dependency nvidia-ml-py is on PyPI only), so the test runs the system hook, whose entry,
file patterns and arguments are the python hook's own (asserted below).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        timeout=60,
        capture_output=True,
    )


def _try_repo(scratch: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGLM_", "PRE_COMMIT"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",  # the doctor on PATH, as pipx puts it
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        VIRTUAL_ENV=sys.prefix,
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(REPO),
            "autoglm-doctor-config-system",
            "--all-files",
            "-v",
        ],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    repo = tmp_path / "scratch"
    (repo / "deploy").mkdir(parents=True)
    _git(repo, "init", "-q")
    # a secret the committer does not have: set only where the service runs
    (repo / "autoglm.yaml").write_text("model_path: /models/glm\nauth:\n  secret_key: ${AUTOGLM_TEST_SECRET}\n")
    (repo / "deploy" / "autoglm-prod.toml").write_text('model_path = "/models/glm"\nport = 8000\n')
    (repo / "deploy" / "serve.sh").write_text(
        'vllm serve /models/glm --chat-template "tmpl\\\\" --port 8000 --max-model-len 25480 '
        "--served-model-name autoglm-phone-9b\n"  # complete for the server pack its role detection picks
    )
    (repo / "README.md").write_text("not a config\n")
    return repo


def test_both_hooks_run_the_same_lint() -> None:
    python, system = HOOKS
    assert (python["language"], system["language"]) == ("python", "system")
    assert python["entry"] == system["entry"] == "autoglm-doctor check --only config --no-smoke --no-env"
    assert python["files"] == system["files"] and python["pass_filenames"] and system["pass_filenames"]
    pattern = re.compile(python["files"])
    for name in ("autoglm.yaml", "deploy/autoglm-prod.toml", "a/autoglm.json", "serve.sh", "deploy/vllm.args"):
        assert pattern.search(name), name
    # the launch and request files users really name (vLLM's --config YAML/JSON, the bundled example's request.json)
    for name in (
        "deploy/vllm.yaml",
        "vllm2.yml",
        "vllm-config.json",
        "sglang.yaml",
        "sglang-args.json",
        "serve.yaml",
        "request.json",
        "examples/deployment/request.json",
        "batch-request.json",
        "requests.json",
    ):
        assert pattern.search(name), name
    for name in ("README.md", "build.sh", "config.yaml", "package.json", "tsconfig.json"):
        assert not pattern.search(name), name


@pytest.mark.slow
def test_try_repo_passes_on_several_configs_with_an_unset_secret(scratch: Path, tmp_path: Path) -> None:
    _git(scratch, "add", "-A")
    _git(scratch, "commit", "-q", "-m", "configs")
    proc = _try_repo(scratch, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"autoglm-doctor config lint\.+Passed", proc.stdout)
    # the YAML, the TOML and the launch file, in one run (the launch file's role: a server, where the
    # sample-request check does not apply)
    assert proc.stdout.count("Summary: 4 checks: ") == 2 and proc.stdout.count("Summary: 3 checks: ") == 1
    assert "AUTOGLM_TEST_SECRET is not set" in proc.stdout and "--no-env" in proc.stdout


@pytest.mark.slow
def test_try_repo_fails_on_a_broken_config(scratch: Path, tmp_path: Path) -> None:
    (scratch / "deploy" / "autoglm-prod.toml").write_text('model_path = "/models/glm"\nport = 99999\n')
    _git(scratch, "add", "-A")
    _git(scratch, "commit", "-q", "-m", "configs")
    proc = _try_repo(scratch, tmp_path)
    assert proc.returncode == 1
    assert re.search(r"autoglm-doctor config lint\.+Failed", proc.stdout)
    assert "deploy/autoglm-prod.toml:2:8: port is 99999" in proc.stdout


@pytest.mark.slow
def test_try_repo_lints_each_file_as_what_it_is_with_no_args(tmp_path: Path) -> None:
    """A doctor config, a request JSON, a vLLM command and an SGLang command, one planted mistake each."""
    repo = tmp_path / "mixed"
    (repo / "deploy").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "autoglm.yaml").write_text("model_path: /models/glm\nmodel_max_lenght: 4096\n")
    (repo / "autoglm-request.json").write_text('[{"id": 1, "data": [1.0, 2.0]}, {"id": 1, "data": [3.0, 4.0]}]\n')
    (repo / "deploy" / "serve.sh").write_text(
        "vllm serve /models/glm --served-model-name autoglm-phone-9b --max-model-len 25480 \\\n"
        "  --port 8000 \\\n  --gpu-memory-utilisation 0.9\n"
    )
    (repo / "deploy" / "sglang-serve.sh").write_text(
        "python3 -m sglang.launch_server --model-path /models/glm --trust-remote-code \\\n"
        "  --mm-enable-dp-encoder --tp-size two --port 30000 \\\n"
        "  --served-model-name autoglm-phone-9b --context-length 25480\n"
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "configs")
    proc = _try_repo(repo, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    mistakes = re.findall(r"^\s+(error|warning)\s+(\S+?):(\d+):(\d+): (.*)$", proc.stdout, re.MULTILINE)
    assert sorted((m[1], m[2], m[3]) for m in mistakes) == [
        ("autoglm-request.json", "1", "33"),
        ("autoglm.yaml", "2", "19"),
        ("deploy/serve.sh", "3", "3"),
        ("deploy/sglang-serve.sh", "2", "36"),
    ], proc.stdout
    messages = " ".join(m[4] for m in mistakes)
    assert "model_max_lenght is not a key the service reads" in messages
    assert "repeats id" in messages
    flat = re.sub(r"\s+", " ", proc.stdout)  # the terminal report wraps long messages
    assert "unrecognized arguments: --gpu-memory-utilisation 0.9" in flat
    assert "did you mean --gpu-memory-utilization?" in flat
    assert "argument --tp-size/--tensor-parallel-size: invalid int value: 'two'" in flat
    assert "--model-path" not in messages and "--trust-remote-code" not in messages
    # the request file's own run does not ask for the autoglm.yaml that sits beside it
    assert "add ./autoglm.yaml" not in proc.stdout


@pytest.mark.slow
def test_try_repo_lints_engine_yaml_and_request_json_by_their_usual_names(tmp_path: Path) -> None:
    """vLLM's --config YAML/JSON and request.json (the bundled example's name) are linted as what they are."""
    repo = tmp_path / "names"
    (repo / "deploy").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "deploy" / "vllm.yaml").write_text(
        "model: /models/glm\nserved-model-name: autoglm-phone-9b\nmax-model-len: 25480\ngpu-memory-utilisation: 0.9\n"
    )
    (repo / "deploy" / "sglang-config.json").write_text('{"model-path": "/models/glm", "tp-size": "two"}\n')
    (repo / "request.json").write_text((REPO / "examples" / "deployment" / "request.json").read_text())
    (repo / "batch-request.json").write_text('[{"id": 1, "data": [1.0]}, {"id": 1, "data": [2.0]}]\n')
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "configs")
    proc = _try_repo(repo, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    flat = re.sub(r"\s+", " ", proc.stdout)
    assert "did you mean --gpu-memory-utilization?" in flat  # vllm.yaml, against vLLM's flags
    assert "role: open-autoglm-server, because deploy/vllm.yaml holds the flags of vllm" in flat
    assert "role: open-autoglm-server, because deploy/sglang-config.json holds the flags of sglang" in flat
    assert "invalid int value: 'two'" in flat
    assert "batch-request.json:1:28: item 1 (line 1) repeats id '1'" in flat
    # the bundled example's request.json is linted too, and is sound
    assert proc.stdout.count("Sample request is valid (config.request)") == 2
    assert proc.stdout.count("Summary: ") == 4
