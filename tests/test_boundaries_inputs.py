"""Issue 23: inputs that ended in exit 3 (the doctor itself failed): each is now a finding or a usage error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers.hostile import doctor

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, FIFOs, setsid and RLIMIT_AS")


def _statuses(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {r["id"]: r["status"] for r in json.loads(run.stdout)["results"]}


def test_a_hub_cache_that_cannot_be_searched_is_a_finding(tmp_path: Path) -> None:
    """refs/main naming a 300-character snapshot: stat fails (ENAMETOOLONG, as EACCES for a locked folder)."""
    repo = tmp_path / "hub" / "models--zai-org--AutoGLM-Phone-9B"
    (repo / "refs").mkdir(parents=True)
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 300)
    run = doctor(
        ["check", "--no-smoke", "--only", "weights.*", "--model", "zai-org/AutoGLM-Phone-9B", "--format", "json"],
        cwd=tmp_path,
        env={"HF_HUB_CACHE": str(tmp_path / "hub")},
        bound_s=30,
    )
    assert run.code == 1 and "error" not in _statuses(run).values()
    path = next(r for r in json.loads(run.stdout)["results"] if r["id"] == "weights.path")
    assert any("cannot be read: File name too long" in f["message"] for f in path["findings"]), path


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its mode")
def test_a_locked_hub_cache_is_a_finding(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    (hub / "models--a--b" / "snapshots" / "abc").mkdir(parents=True)
    hub.chmod(0)
    try:
        run = doctor(
            ["check", "--no-smoke", "--only", "weights.*", "--model", "a/b", "--format", "json"],
            cwd=tmp_path,
            env={"HF_HUB_CACHE": str(hub)},
            bound_s=30,
        )
    finally:
        hub.chmod(0o755)
    assert run.code == 1 and "cannot be searched" in run.text


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_special_files_as_inputs_are_findings_or_usage_errors(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        special = tmp_path / "in.yaml"
        os.mkfifo(special)
    elif kind == "folder":
        special = tmp_path / "in.yaml"
        special.mkdir()
    else:
        special = Path("/dev/zero")
    base = ["check", "--no-smoke", "--only", "config.*", "--format", "json"]
    for flag in ("--config", "--request"):
        run = doctor([*base, flag, str(special)], cwd=tmp_path, bound_s=30)
        assert run.code == 1, (flag, run.stderr)
        assert "error" not in _statuses(run).values()
    run = doctor([*base, str(special)], cwd=tmp_path, bound_s=30)  # a positional file to lint
    assert run.code in (1, 2), run.stderr
    run = doctor(["check", "--snapshot", str(special)], cwd=tmp_path, bound_s=30)
    assert run.code == 2 and str(special) in run.stderr


def test_nul_bytes_in_a_launch_file_are_findings(tmp_path: Path) -> None:
    (tmp_path / "serve.sh").write_bytes(
        b"export MODEL=/m\x00x\nvllm serve /models/glm\x00 --max-model-len 4096\x00 --chat-template /t\x00x\n"
    )
    run = doctor(["check", "--no-smoke", "--format", "json", "serve.sh"], cwd=tmp_path, bound_s=60)
    assert run.code in (0, 1) and "error" not in _statuses(run).values()


def test_the_pre_commit_form_probes_the_target_once(tmp_path: Path) -> None:
    """One probe for 60 files (it was one per file: 1,000 files took 164 s); every file still gets its report."""
    count = tmp_path / "probes"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho probe >> "{count}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    names = []
    for i in range(60):
        name = f"autoglm{i}.yaml"
        body = "model_path: /models/glm\nport: 8000\n" if i % 2 else "model_path: /models/glm\n\tport: 8000\n"
        (tmp_path / name).write_text(body)
        names.append(name)
    run = doctor(
        ["check", "--only", "config", "--no-smoke", "--no-env", "--python", str(python), *names],
        cwd=tmp_path,
        bound_s=60,
    )
    assert run.code == 1  # the files with a tab fail, each in its own report
    assert count.read_text().count("probe") == 1
    assert run.text.count("autoglm-doctor 0.1.0 · pack") == 60
    assert run.text.count("line 2 is indented with a tab") == 30
