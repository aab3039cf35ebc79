"""Issue 23: a target whose library files nest 20,000 brackets: the probe names the file and goes on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers.hostile import doctor
from tests.helpers.venvs import make_venv

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, setsid and RLIMIT_AS")

DEEP = "[" * 20_000 + "]" * 20_000


def test_deeply_nested_library_registries_are_named_not_fatal(tmp_path: Path) -> None:
    """configuration_auto.py and vLLM's registry.py of 20,000 nested brackets killed the probe (RecursionError)."""
    venv = make_venv(tmp_path / "venv")
    venv.add(
        "transformers",
        "4.57.1",
        files={
            "transformers/models/auto/configuration_auto.py": f"CONFIG_MAPPING_NAMES = OrderedDict(\n{DEEP}\n)\n",
        },
    )
    venv.add(
        "vllm",
        "0.11.0",
        files={
            "vllm/model_executor/models/registry.py": "_TEXT_GENERATION_MODELS = {\n" + DEEP + "\n}\n",
        },
    )
    run = doctor(["snapshot", "--python", str(venv.python)], cwd=tmp_path, bound_s=60)
    assert run.code == 0, run.stderr
    snap = json.loads(run.stdout)
    assert snap["python"]["version"] and not snap["probe_errors"]
    problems = snap["libraries"]["transformers"]["problems"]
    assert any("configuration_auto.py could not be read: brackets nested deeper than" in p for p in problems), problems
    assert any("registry.py could not be read" in p for p in snap["libraries"]["engines"]["vllm"]["problems"])
    assert {d["name"] for d in snap["distributions"]} >= {"transformers", "vllm"}

    run = doctor(
        ["check", "--no-smoke", "--python", str(venv.python), "--only", "python.*,packages.*", "--format", "json"],
        cwd=tmp_path,
        bound_s=60,
    )
    report = json.loads(run.stdout)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["python.version"] != "skip" and "error" not in statuses.values(), statuses
