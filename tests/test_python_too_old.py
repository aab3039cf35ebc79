"""A target interpreter too old to probe (Python 2.7) is a finding that names the minimum, not a crash.

Debian 12 ships no python2 (`apt-cache policy python2`: no candidate), so the interpreters are
fakes of the two ways a real 2.7 answers: one runs the probe with 2.7's ``sys.version_info`` (a
probe that compiles there stops at its version guard), the other rejects the probe's syntax as
2.7 would, and answers ``-c`` with its version.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from autoglm_doctor import packs
from tests.conftest import result

AS_27 = "import sys; sys.version_info = (2, 7, 18, 'final', 0)"


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def runs_probe_as_27(tmp_path: Path) -> Path:
    code = f"{AS_27}; exec(compile(sys.stdin.read(), '<stdin>', 'exec'))"
    return _script(tmp_path / "python2.7", f'[ "$1" = "-" ] && exec {sys.executable} -S -c "{code}"\nexit 2\n')


@pytest.fixture
def rejects_probe_syntax(tmp_path: Path) -> Path:
    version = f"{AS_27}; print('%d.%d.%d' % tuple(sys.version_info[:3]))"
    return _script(
        tmp_path / "python2",
        'if [ "$1" = "-" ]; then cat >/dev/null; echo "  File \\"<stdin>\\", line 40" >&2; '
        'echo "SyntaxError: invalid syntax" >&2; exit 1; fi\n'
        f'[ "$1" = "-c" ] && exec {sys.executable} -S -c "{version}"\nexit 2\n',
    )


@pytest.mark.parametrize("fake", ["runs_probe_as_27", "rejects_probe_syntax"])
def test_python_27_is_a_finding_naming_the_minimum(
    fake: str, request: pytest.FixtureRequest, workdir: Path, run_json: Any
) -> None:
    python = request.getfixturevalue(fake)
    code, report = run_json("--python", str(python), "--only", "python,packages")
    assert code == 1
    version = result(report, "python.version")
    assert version["status"] == "fail"
    (finding,) = version["findings"]
    assert finding["code"] == "python.too-old"
    assert f"{python} is Python 2.7.18, older than 3.8, the oldest the doctor can inspect" in finding["message"]
    assert f"the open-autoglm pack needs Python {packs.load().python}" in finding["message"]
    assert finding["evidence"]["observed"] == "2.7.18"
    assert all(r["status"] == "skip" for r in report["results"] if r["id"] != "python.version")
