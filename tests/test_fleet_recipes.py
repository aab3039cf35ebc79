"""The fleet recipes in docs/fleet/ run commands the real CLI accepts, and they work end to end."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from autoglm_doctor import cli

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "docs" / "fleet"


def k8s_commands(path: Path) -> list[list[str]]:
    """argv (after ``autoglm-doctor``) of every container that runs the doctor."""
    found = []
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        assert doc["apiVersion"] in ("apps/v1", "batch/v1")
        assert doc["kind"] in ("DaemonSet", "Job")
        pod = doc["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            command = container.get("command", [])
            if command[:1] == ["autoglm-doctor"]:
                found.append([*command[1:], *container.get("args", [])])
    return found


def ansible_commands(path: Path) -> list[list[str]]:
    """argv (after the doctor) of every command task, with the play's vars filled in."""
    (play,) = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert play["hosts"] == "gpu_nodes"
    variables = dict(play["vars"], playbook_dir="/play", inventory_hostname="gpu-a17")

    def fill(text: str) -> str:
        for _ in range(3):  # vars may refer to vars
            text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(variables[m[1]]), text)
        return text

    found = []
    for task in play["tasks"]:
        command = task.get("ansible.builtin.command")
        if command is None:
            continue
        argv = [fill(a) for a in command["argv"]]
        assert argv[0].endswith("autoglm-doctor")
        found.append(argv[1:])
    return found


def slurm_commands(path: Path) -> list[list[str]]:
    """The doctor invocations of the Slurm script (inside srun's bash -c and after it)."""
    text = path.read_text(encoding="utf-8")
    assert "srun --ntasks-per-node=1" in text
    found = []
    for line in text.splitlines():
        if line.startswith("#") or "autoglm-doctor " not in line:
            continue
        words = shlex.split(line)
        if words[0] == "srun":
            words = shlex.split(words[-1])  # bash -c '...'
        start = words.index("autoglm-doctor")
        found.append(words[start + 1 :])
    return found


ALL = {
    "daemonset.yaml": k8s_commands,
    "job.yaml": k8s_commands,
    "playbook.yml": ansible_commands,
    "slurm.sh": slurm_commands,
}


def parse_with_the_real_cli(argv: list[str]) -> Any:
    """Parse argv with the CLI's own parser (no execution): unknown commands or flags raise."""
    group: Any = typer.main.get_command(cli.app)
    with group.make_context("autoglm-doctor", list(argv), resilient_parsing=False) as ctx:
        sub = group.get_command(ctx, argv[0])
        assert sub is not None, f"no command {argv[0]!r}"
        return sub.make_context(argv[0], list(argv[1:]), parent=ctx)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_recipe_runs_valid_doctor_commands(name: str) -> None:
    commands = ALL[name](RECIPES / name)
    subcommands = [argv[0] for argv in commands]
    assert "snapshot" in subcommands or "fleet" in subcommands
    for argv in commands:
        ctx = parse_with_the_real_cli(argv)
        if argv[0] == "snapshot":
            assert ctx.params["output"] is not None
            assert str(ctx.params["output"]).endswith(".json")
            assert ctx.params["config"] is not None
        else:
            assert argv[0] == "fleet"
            assert ctx.params["files"]


def test_a_misspelt_flag_would_be_caught() -> None:
    with pytest.raises(Exception, match="No such option") as caught:
        parse_with_the_real_cli(["snapshot", "--ouput", "x.json"])
    assert type(caught.value).__name__ == "NoSuchOption"


def test_docs_link_every_recipe() -> None:
    text = (ROOT / "docs" / "fleet.md").read_text(encoding="utf-8")
    for name in ALL:
        assert f"fleet/{name}" in text


def deployment(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "etc" / "autoglm.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("model:\n  model_path: /models/none\n  device: cpu\n", encoding="utf-8")
    models = tmp_path / "models"
    models.mkdir()
    return config, models


def localise(argv: list[str], config: Path, models: Path, out: Path, node: str) -> list[str]:
    mapping = {
        "/etc/autoglm/autoglm.yaml": str(config),
        "/models/AutoGLM-Phone-9B": str(models),
        "/out/$(NODE_NAME).json": str(out / f"{node}.json"),
        "/tmp/autoglm-doctor-snapshot.json": str(out / f"{node}.json"),
        "/out": str(out),
        "/play/fleet": str(out),
    }
    return [mapping.get(a, a) for a in argv]


@pytest.mark.parametrize("name", ["daemonset.yaml", "job.yaml", "playbook.yml"])
def test_recipe_commands_work_end_to_end(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config, models = deployment(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    commands = ALL[name](RECIPES / name)
    snapshots = [argv for argv in commands if argv[0] == "snapshot"]
    for node in ("gpu-a", "gpu-b"):
        for argv in snapshots:
            assert cli.main(localise(argv, config, models, out, node)) == 0
    capsys.readouterr()
    for node in ("gpu-a", "gpu-b"):
        data: dict[str, Any] = json.loads((out / f"{node}.json").read_text(encoding="utf-8"))
        assert data["schema"] == "autoglm-doctor/snapshot@1"
    fleet = [argv for argv in commands if argv[0] == "fleet"]
    for argv in fleet:
        code = cli.main(localise(argv, config, models, out, "-"))
        text = capsys.readouterr().out
        assert "2 nodes from 2 files" in text
        assert code == 0, text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_slurm_script_runs_with_srun_on_one_node(tmp_path: Path) -> None:
    config, _ = deployment(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    # One node: drop srun's own options and run the task once, as srun would on each node.
    srun.write_text('#!/usr/bin/env bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n', encoding="utf-8")
    srun.chmod(0o755)
    out = tmp_path / "out"
    env = dict(
        os.environ,
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        OUT=str(out),
        AUTOGLM_CONFIG=str(config),
    )
    proc = subprocess.run(
        ["bash", str(RECIPES / "slurm.sh")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (snapshot,) = out.glob("*.json")
    assert json.loads(snapshot.read_text(encoding="utf-8"))["schema"] == "autoglm-doctor/snapshot@1"
    assert "1 node from 1 file" in proc.stdout
    assert "Result: no drift" in proc.stdout
