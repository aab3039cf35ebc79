"""Run the doctor as a user would, against hostile input, and check every promise it makes.

:func:`doctor` runs ``python -m autoglm_doctor`` in a child with an address-space cap
(``RLIMIT_AS``), in its own session, marked by an environment variable that every process it
starts inherits. After the run it asserts the exit status is one DESIGN.md allows, no traceback
was printed, the run ended within its bound, and no marked process is left (``/proc``).
:func:`tree_state` lists and hashes a folder, to prove nothing was written under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ALLOWED_EXITS = {0, 1, 2, 130}
MARK = "AUTOGLM_HOSTILE_MARK"
MEMORY_CAP = 1 << 30
"""Address space each doctor run may use (1 GiB: a normal check stays far below)."""


@dataclass
class Run:
    """One finished doctor run."""

    code: int
    stdout: bytes
    stderr: str
    seconds: float

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def marked_processes(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``mark`` (zombies excluded)."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle not in handle.read():
                    continue
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            found.append(int(entry))
    return found


def still_running(mark: str, grace_s: float = 2.0) -> list[int]:
    """Marked processes still alive after ``grace_s`` (SIGKILL is delivered, not awaited, by the killer)."""
    deadline = time.monotonic() + grace_s
    while True:
        left = marked_processes(mark)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def doctor(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    bound_s: float = 60.0,
    memory: int = MEMORY_CAP,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    during: Callable[[subprocess.Popen[bytes]], None] | None = None,
    shell_redirect: str = "",
    console_script: bool = False,
) -> Run:
    """Run the doctor; assert the promises every run keeps (exit, no traceback, bound, no leftovers)."""
    mark = uuid.uuid4().hex
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full_env.update(env or {})
    full_env[MARK] = mark
    full_env.setdefault("NO_COLOR", "1")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    # `python -m` puts the working directory first on sys.path; the console script, as users run it, does not
    script = Path(sys.executable).with_name("autoglm-doctor")
    argv = [str(script), *args] if console_script else [sys.executable, "-m", "autoglm_doctor", *args]
    if shell_redirect:  # e.g. ">&-" or ">/dev/full": the shell sets up stdout
        import shlex

        argv = ["/bin/sh", "-c", " ".join(shlex.quote(a) for a in argv) + " " + shell_redirect]
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - the doctor itself
        argv,
        cwd=cwd,
        env=full_env,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        preexec_fn=limit,  # noqa: PLW1509 - the memory cap must be set in the child
        start_new_session=True,
    )
    if during is not None:
        during(proc)
    try:
        out, err = proc.communicate(timeout=bound_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        _kill_marked(mark)
        raise AssertionError(f"{' '.join(args)} ran past its bound of {bound_s} s") from None
    seconds = time.monotonic() - started
    stderr = err.decode("utf-8", "replace")
    left = still_running(mark)
    _kill_marked(mark)
    assert not left, f"processes left running after {' '.join(args)}: {left}"
    assert proc.returncode in ALLOWED_EXITS, f"exit {proc.returncode}: {stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr[-2000:]
    assert "crashed" not in stderr, stderr[-2000:]
    return Run(proc.returncode, out or b"", stderr, seconds)


def _kill_marked(mark: str) -> None:
    for pid in marked_processes(mark):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def tree_state(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root`` (folders too) with its size and sha256 (files), to compare runs."""
    state: dict[str, tuple[int, str]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            state[os.path.relpath(os.path.join(folder, name), root) + "/"] = (0, "")
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                state[os.path.relpath(path, root)] = (0, "special")
                continue
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            state[os.path.relpath(path, root)] = (os.path.getsize(path), digest)
    return state


def fake_interpreter(path: Path, body: str) -> Path:
    """An executable shell script standing in for a target interpreter (it runs ``body``)."""
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)
    return path
