"""Issue 23: --fix reads the resolver's answer as input: paths and types checked, output redacted, deadline kept."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from autoglm_doctor.fix.resolve import IndexOptions, Lock, NotLocked, resolve
from tests.helpers.hostile import MARK, doctor, fake_interpreter, still_running

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, FIFOs, setsid and RLIMIT_AS")

FAKE_UV = """
if [ "$1" = "--version" ]; then echo "uv 0.9.0"; exit 0; fi
out=""; prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"
done
if [ -n "$FAKE_UV_SAY" ]; then echo "$FAKE_UV_SAY"; exit 2; fi
cat "$FAKE_UV_ANSWER" > "$out"
"""


def _fake_uv(tmp_path: Path, answer: str) -> dict[str, str]:
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    fake_interpreter(tools / "uv", FAKE_UV)
    (tmp_path / "answer.toml").write_text(answer)
    return {
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "FAKE_UV_ANSWER": str(tmp_path / "answer.toml"),
        "PIP_CONFIG_FILE": os.devnull,
    }


def _pylock(*urls: str) -> str:
    wheels = ", ".join(f'{{ url = "{url}" }}' for url in urls)
    return f'lock-version = "1.0"\n[[packages]]\nname = "torch"\nversion = "2.5.1"\nwheels = [{wheels}]\n'


def _fix(tmp_path: Path, env: dict[str, str], *extra: str):  # type: ignore[no-untyped-def]
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir(exist_ok=True)
    args = ["check", "--no-smoke", "--only", "python.version", "--python", sys.executable, "--fix"]
    args += ["--fix-format", "pylock", "--find-links", str(wheelhouse), "--fix-output", str(tmp_path / "out.toml")]
    return doctor([*args, *extra], cwd=tmp_path, env=env, bound_s=60)


def test_a_lock_naming_dev_zero_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    """A lock naming file:///dev/zero was hashed forever, a FIFO blocked forever: neither is read now."""
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    fifo = wheelhouse / "torch-2.5.1-py3-none-any.whl"
    os.mkfifo(fifo)
    (wheelhouse / "zero.whl").symlink_to("/dev/zero")
    real = wheelhouse / "real-1.0-py3-none-any.whl"
    real.write_bytes(b"a real archive")
    outside = tmp_path / "outside-1.0-py3-none-any.whl"
    outside.write_bytes(b"not in the wheelhouse")
    answer = _pylock(
        "file:///dev/zero", fifo.as_uri(), (wheelhouse / "zero.whl").as_uri(), real.as_uri(), outside.as_uri()
    )
    started = time.monotonic()
    run = _fix(tmp_path, _fake_uv(tmp_path, answer))
    assert time.monotonic() - started < 30
    assert run.code in (0, 1), run.stderr
    written = (tmp_path / "out.toml").read_text()
    import hashlib

    assert hashlib.sha256(b"a real archive").hexdigest() in written  # the one regular file in the wheelhouse
    assert hashlib.sha256(b"not in the wheelhouse").hexdigest() not in written


@pytest.mark.parametrize(
    "answer",
    [
        'packages = [1, "x"]\n',
        'packages = "none"\n',
        '[[packages]]\nname = 3\nversion = [1]\nwheels = "no"\n',
        '[[packages]]\nname = "torch"\nversion = "2.5.1"\nwheels = [{ url = 7, hashes = "x" }]\nsdist = 3\n',
        "",
    ],
)
def test_wrong_types_in_the_resolvers_answer_are_not_a_crash(tmp_path: Path, answer: str) -> None:
    """Wrong types in the resolver's answer ended in exit 3."""
    run = _fix(tmp_path, _fake_uv(tmp_path, answer))
    assert run.code in (0, 1), run.stderr


def test_the_resolvers_error_output_is_redacted(tmp_path: Path) -> None:
    env = _fake_uv(tmp_path, "")
    env["FAKE_UV_SAY"] = (
        "error: Failed to fetch https://bob:hunter2secret@idx.example/simple/torch/ "
        "with header Authorization: Bearer sk-abcdef0123456789abcdef"
    )
    run = _fix(tmp_path, env)
    assert run.code in (0, 1)
    out = tmp_path / "out.toml"
    shown = run.stderr + run.text + (out.read_text(errors="replace") if out.exists() else "")
    assert "hunter2secret" not in shown and "sk-abcdef0123456789abcdef" not in shown
    assert "https://bob:***@idx.example/simple/torch/" in shown, shown  # the rest of what it said is kept


def test_a_stalled_resolver_is_killed_with_its_group_at_its_deadline(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_interpreter(tools / "uv", "sleep 300 &\nsleep 300")
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", MARK: mark}
    started = time.monotonic()
    outcome = resolve(["torch==2.5.1"], sys.executable, IndexOptions(find_links=(str(tmp_path),)), timeout=2, env=env)
    assert time.monotonic() - started < 15
    assert isinstance(outcome, NotLocked) and not isinstance(outcome, Lock)
    assert "did not finish within 2 s" in outcome.reason
    assert not still_running(mark)


FAKE_PIP = """
out=""; prev=""
for a in "$@"; do
  if [ "$prev" = "--report" ]; then out="$a"; fi
  prev="$a"
done
cat "$FAKE_PIP_ANSWER" > "$out"
"""


@pytest.mark.parametrize(
    "report",
    [
        "[1, 2]",
        '{"install": "all"}',
        '{"install": [1, {"metadata": "x", "download_info": []}], "pip_version": 26}',
        '{"install": [{"metadata": {"name": "torch", "version": 2}, "download_info": {"url": "file:///dev/zero",'
        ' "archive_info": {"hashes": []}}}]}',
    ],
)
def test_pips_report_of_the_wrong_shape_is_read_safely(tmp_path: Path, report: str) -> None:
    """pip's --report is typed entry by entry: a wrong type is skipped, /dev/zero is never hashed."""
    from autoglm_doctor.fix.resolve import _resolve_pip

    pip = fake_interpreter(tmp_path / "pip", FAKE_PIP)
    (tmp_path / "answer.json").write_text(report)
    stated = tmp_path / "req.txt"
    stated.write_text("torch==2.5.1\n")
    env = {**os.environ, "FAKE_PIP_ANSWER": str(tmp_path / "answer.json")}
    started = time.monotonic()
    outcome = _resolve_pip([str(pip)], stated, IndexOptions(find_links=("/dev",)), "", tmp_path, 30, env)
    assert time.monotonic() - started < 10
    assert isinstance(outcome, (Lock, NotLocked))
    if isinstance(outcome, Lock):
        assert all(not f.sha256 for p in outcome.packages for f in p.files)
