"""SGLang's requirements are read from its real METADATA, whose folded License: header holds whitespace-only lines.

Real parts: venvs whose SGLang 0.5.6.post2 dist-info is the release's own METADATA, verbatim from
``tools/knowledge_sources/sglang.tar.xz`` (76 Requires-Dist lines after a License: header folded over
~200 lines, some holding only spaces), as ``pip install --no-deps sglang==0.5.6.post2`` leaves it.
Nothing is faked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import result
from tests.helpers.engines import install_release
from tests.helpers.venvs import Venv

RunJson = Callable[..., tuple[int, dict[str, Any]]]


def test_no_deps_sglang_is_one_grouped_error(venv: Venv, workdir: Path, run_json: RunJson) -> None:
    install_release(venv, "sglang", "0.5.6.post2")
    code, report = run_json("--python", str(venv.python), "--only", "packages.*")
    assert code == 1
    findings = result(report, "packages.conflicts")["findings"]
    assert [f["code"] for f in findings] == ["packages.dependencies-missing"]
    grouped = findings[0]
    assert grouped["severity"] == "error"
    assert grouped["message"].startswith("sglang 0.5.6.post2 is missing 61 of its 61 requirements")
    assert "sglang 0.5.6.post2 requires torch==2.9.1, which is not installed" in grouped["details"]
    assert "-m pip install sglang==0.5.6.post2" in grouped["fix"]


def test_torch_beside_sglang_must_be_the_version_it_pins(venv: Venv, workdir: Path, run_json: RunJson) -> None:
    install_release(venv, "sglang", "0.5.6.post2")
    venv.add("filelock", "3.16.1")
    venv.add("typing-extensions", "4.12.2", package="typing_extensions")
    venv.add_torch("2.8.0", cuda="12.8")
    code, report = run_json("--python", str(venv.python), "--only", "packages.*")
    assert code == 1
    pin = [f for f in result(report, "packages.conflicts")["findings"] if "torch 2.8.0" in f["message"]]
    assert len(pin) == 1, result(report, "packages.conflicts")
    assert pin[0]["severity"] == "error"
    assert pin[0]["message"] == "sglang 0.5.6.post2 requires torch==2.9.1, but torch 2.8.0 is installed"
    assert pin[0]["fix"].endswith("-m pip install torch==2.9.1")
