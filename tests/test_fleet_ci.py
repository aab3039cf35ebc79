"""CI recipes (docs/ci/), the pre-commit hook and --exit-zero, run against the real CLI."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from autoglm_doctor import cli
from tests.helpers.venvs import make_venv

ROOT = Path(__file__).resolve().parents[1]
GOOD = "model:\n  device: cpu\n  torch_dtype: float32\n"
BROKEN = "model:\n\tdevice: cpu\n"  # a tab: config.syntax fails


def doctor_argv(command: str) -> list[str] | None:
    """The doctor's arguments in a shell command line (``>> FILE`` redirections dropped)."""
    words = shlex.split(command.split(">>")[0])
    for i, word in enumerate(words):
        if word.endswith("autoglm-doctor"):
            return words[i + 1 :]
    return None


def parse_with_the_real_cli(argv: list[str]) -> Any:
    group: Any = typer.main.get_command(cli.app)
    with group.make_context("autoglm-doctor", list(argv)) as ctx:
        sub = group.get_command(ctx, argv[0])
        assert sub is not None
        return sub.make_context(argv[0], list(argv[1:]), parent=ctx)


def formats_of(argv: list[str]) -> list[str]:
    """Every report format of a command line (``--format`` repeats; ``NAME:FILE`` and commas allowed)."""
    values = parse_with_the_real_cli(argv).params["output_format"] or ["rich"]
    return [item.split(":", 1)[0] for value in values for item in str(value).split(",")]


def fmt_of(argv: list[str]) -> str:
    return formats_of(argv)[0]


def github_commands() -> list[list[str]]:
    workflow = yaml.safe_load((ROOT / "docs" / "ci" / "github-actions.yml").read_text(encoding="utf-8"))
    assert workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    steps = workflow["jobs"]["preflight"]["steps"]
    found = []
    for step in steps:
        for line in str(step.get("run", "")).splitlines():
            argv = doctor_argv(line)
            if argv:
                found.append(argv)
    return found


def gitlab_commands() -> list[tuple[list[str], str]]:
    pipeline = yaml.safe_load((ROOT / "docs" / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8"))
    found = []
    for name, job in pipeline.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        assert job["stage"] in pipeline["stages"], name
        argvs = [a for a in map(doctor_argv, job["script"]) if a]
        assert len(argvs) == 1, name
        found.append((argvs[0], job["artifacts"]["reports"]["junit"]))
    return found


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with a deployment config, as the CI job sees it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "autoglm.yaml").write_text(GOOD, encoding="utf-8")
    for name in ("AUTOGLM_CONFIG", "MODEL_WEIGHT_PATH", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def junit_cases(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag in ("testsuites", "testsuite")
    return list(root.iter("testcase"))


def test_github_workflow_commands_parse_and_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (argv,) = github_commands()  # one run of the doctor gives every report
    assert sorted(formats_of(argv)) == ["github", "junit", "markdown", "sarif"]
    workflow = (ROOT / "docs" / "ci" / "github-actions.yml").read_text(encoding="utf-8")
    assert "path: autoglm-doctor.*" in workflow and "report_paths: autoglm-doctor.xml" in workflow
    assert (
        "sarif_file: autoglm-doctor.sarif" in workflow and 'cat autoglm-doctor.md >> "$GITHUB_STEP_SUMMARY"' in workflow
    )
    make_venv(repo / ".venv")  # the deployment's venv the workflow creates
    (repo / "autoglm.yaml").write_text(BROKEN, encoding="utf-8")
    assert cli.main(argv) == 1  # the gate fails on the broken config, after writing every report
    out = capsys.readouterr().out
    assert re.search(r"^::error file=autoglm\.yaml,line=2,col=1,", out, re.MULTILINE), out
    cases = junit_cases(repo / "autoglm-doctor.xml")
    assert any(case.get("name") == "config.syntax" and case.find("failure") is not None for case in cases)
    assert "config.syntax" in (repo / "autoglm-doctor.md").read_text(encoding="utf-8")
    sarif = json.loads((repo / "autoglm-doctor.sarif").read_text(encoding="utf-8"))
    assert any(r["ruleId"] == "config.syntax" for r in sarif["runs"][0]["results"])


def test_gitlab_pipeline_commands_parse_and_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = gitlab_commands()
    assert len(jobs) == 2
    for argv, junit in jobs:
        params = parse_with_the_real_cli(argv).params
        assert fmt_of(argv) == "junit"
        assert [str(o) for o in params["output"]] == [junit]  # the artifact is the file the doctor writes
        code = cli.main(argv)
        capsys.readouterr()
        assert code in (0, 1)
        if "--exit-zero" in argv:
            assert code == 0
        assert junit_cases(repo / junit)


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [(h["id"], h["language"]) for h in hooks] == [
        ("autoglm-doctor-config", "python"),
        ("autoglm-doctor-config-system", "system"),
    ]
    for hook in hooks:
        assert hook["entry"] == "autoglm-doctor check --only config --no-smoke --no-env"
        files = re.compile(hook["files"])
        for name in ("autoglm.yaml", "deploy/autoglm.yml", "autoglm-prod.yaml", "autoglm.json", "autoglm.toml"):
            assert files.search(name), name
        for name in ("other.yaml", "autoglm.txt", "autoglm.yaml.bak", "notautoglm/x.yaml"):
            assert not files.search(name), name


@pytest.mark.parametrize(("text", "expected"), [(GOOD, 0), (BROKEN, 1)])
def test_pre_commit_hook_runs_like_pre_commit_does(
    text: str, expected: int, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook, _system = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (repo / "autoglm.yaml").write_text(text, encoding="utf-8")
    argv = shlex.split(hook["entry"])  # pre-commit runs the entry without a shell, filenames appended
    assert argv[0] == "autoglm-doctor"
    code = cli.main([*argv[1:], "autoglm.yaml"])
    out = capsys.readouterr().out
    assert code == expected, out
    ran = [line for line in out.splitlines() if "(config." in line]
    assert ran and all("(config." in line for line in ran)
    assert "(python." not in out and "(packages." not in out
    if expected:
        assert "config.tab-indent" in out or "tab" in out


def test_exit_zero_reports_failures_but_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "autoglm.yaml").write_text(BROKEN, encoding="utf-8")
    base = ["check", "--only", "config.*", "--no-smoke", "--config", "autoglm.yaml", "--format", "json"]
    assert cli.main(base) == 1
    failing = capsys.readouterr().out
    assert cli.main([*base, "--exit-zero"]) == 0
    report_only = capsys.readouterr().out
    assert '"status": "fail"' in failing and '"status": "fail"' in report_only
    assert cli.main([*base, "--exit-zero", "--strict"]) == 0
    capsys.readouterr()
    assert cli.main(["check", "--only", "no.such-check", "--exit-zero"]) == 2  # usage errors still count


def test_ci_doc_shows_the_tested_files() -> None:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    for name in ("ci/github-actions.yml", "ci/gitlab-ci.yml", ".pre-commit-hooks.yaml", "--exit-zero"):
        assert name in text
    for path in ("github-actions.yml", "gitlab-ci.yml"):
        body = (ROOT / "docs" / "ci" / path).read_text(encoding="utf-8")
        assert body.strip() in text  # the doc shows the tested file verbatim
