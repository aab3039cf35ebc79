"""Results as they come, in a real terminal (a pty): each result printed when it finishes, the running
check as a live footer, Ctrl-C prints what finished; lines wrap to the terminal's width."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.helpers.model_folders import build_model
from tests.helpers.venvs import healthy, make_venv

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """The doctor running in a pseudo-terminal of a given size."""

    def __init__(self, args: list[str], columns: int, cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal, as in a shell
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "autoglm_doctor", *args], env)
        self.raw = b""

    def read_until(self, pattern: str, timeout: float = 60.0) -> str:
        """Everything printed so far once ``pattern`` shows (escape codes removed)."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} never showed; the screen had:\n{self.text}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                self.raw += chunk
        return self.text

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def finish(self, timeout: float = 60.0) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.raw += chunk
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CI")}
    return {**env, "TERM": "xterm-256color", **extra}


@pytest.mark.slow
def test_results_stream_then_ctrl_c_prints_what_finished(tmp_path: Path) -> None:
    venv = healthy(make_venv(tmp_path / "venv"))
    # torch that takes minutes to import: the smoke test (last) is still running when Ctrl-C comes
    (venv.site_packages / "torch" / "__init__.py").write_text("import time\ntime.sleep(300)\n")
    model = build_model(tmp_path / "model")
    args = ["check", "--python", str(venv.python), "--model", str(model), "--only", "python,packages,smoke"]
    term = Terminal(args, 100, tmp_path, _env())
    try:
        # the live footer: the running check, its seconds, and the smoke test's phase (its child is running)
        screen = term.read_until(r"smoke\.load-infer\) … \d+ s: import torch")
        # every other result is on screen while the smoke test still runs
        assert "Python version (python.version) ...." in screen
        assert "Package versions in range (packages.versions) ...." in screen
        assert "Summary:" not in screen
        os.write(term.fd, b"\x03")  # Ctrl-C, typed: SIGINT to the terminal's foreground process group
        code = term.finish()
    finally:
        term.kill()
    assert code == 130
    text = term.text
    # packages.abi skips: the venv holds no compiled extension (a pass there would have tested nothing)
    assert "interrupted: 7 of 8 checks finished\nFinished: 7 checks: 6 passed, 1 skipped · no findings\n" in text
    assert "Summary:" not in text  # no verdict for a run that did not finish
    assert text.index("Python version (python.version)") < text.index("interrupted:")


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 200])
def test_lines_fit_the_terminal_and_fix_commands_stay_whole(tmp_path: Path, columns: int) -> None:
    venv = make_venv(tmp_path / "empty")  # nothing installed: long "is not installed" messages and fixes
    config = tmp_path / "autoglm.yaml"
    config.write_text(
        "model_path: /models/glm\nport: 99999\nmodel_max_length: not-a-number\n"
        "api_key: ${AUTOGLM_TEST_UNSET_VARIABLE_WITH_A_LONG_NAME_FOR_WRAPPING}\n"
    )
    args = [
        "check",
        "--no-smoke",
        "--python",
        str(venv.python),
        "--config",
        "autoglm.yaml",
        "--only",
        "python,packages,config",
    ]
    term = Terminal(args, columns, tmp_path, _env(NO_COLOR="1"))
    try:
        code = term.finish()
    finally:
        term.kill()
    assert code == 1
    lines = term.text.split("\n")
    check_lines = [line for line in lines if re.match(r"  [✓!✗–E] .* \.{3,} \w+$", line)]
    assert len(check_lines) >= 6
    assert {len(line) for line in check_lines} == {columns}  # dot leaders end at the terminal's edge
    fixes = [line for line in lines if line.lstrip().startswith("fix: ")]
    long_fix = "fix: export AUTOGLM_TEST_UNSET_VARIABLE_WITH_A_LONG_NAME_FOR_WRAPPING=..."
    assert any(f.strip() == long_fix for f in fixes)  # the command alone, whole, on its line
    # nothing is longer than the terminal but a fix command and a quoted config line (its caret below it)
    body = lines.index("")  # the header (tool, target, platform) names paths whole; the report starts below it
    too_long = [
        line
        for i, line in enumerate(lines)
        if i > body
        and len(line) > columns
        and not line.lstrip().startswith("fix: ")
        and "^" not in lines[i + 1]
        and max(len(word) for word in line.split()) < columns - 20  # a path longer than the room stays whole
    ]
    assert not too_long
    prose = [line for line in lines if line.startswith(" " * 14) and line[14] != " "]
    assert len(prose) > len(fixes)  # continuation lines hang under the message, never at column 0
    assert not [line for line in lines if line and not line.startswith(" ") and "is not installed" in line]


@pytest.mark.slow
def test_ctrl_c_during_a_json_run_says_on_stderr_what_finished(tmp_path: Path) -> None:
    venv = healthy(make_venv(tmp_path / "venv"))
    (venv.site_packages / "torch" / "__init__.py").write_text("import time\ntime.sleep(300)\n")
    model = build_model(tmp_path / "model")
    args = ["check", "--python", str(venv.python), "--model", str(model), "--only", "python,smoke", "--format", "json"]
    term = Terminal(args, 100, tmp_path, _env())
    try:
        term.read_until(r"smoke\.load-infer: import torch")  # the smoke test's own progress: its child runs
        os.write(term.fd, b"\x03")
        code = term.finish()
    finally:
        term.kill()
    text = term.text
    assert code == 130, text
    assert "Python version (python.version) ...." in text  # the finished results, as the rich report shows them
    assert "interrupted: 2 of 3 checks finished\nFinished: 2 checks: 2 passed · no findings" in text
    assert '"schema"' not in text  # no half-made JSON report
