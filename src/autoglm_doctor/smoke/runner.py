"""Run the smoke script in the target interpreter, in its own session, with a deadline.

The script is started as the leader of a new session (so of a new process group). When it
runs over, the whole group is killed with SIGKILL and reaped: nothing it started is left
behind. The group is also killed after a normal exit, so stray helpers (compile workers,
tokenizer pools) never outlive the check.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from autoglm_doctor import procs
from autoglm_doctor.smoke.protocol import SmokeRequest, SmokeRun, describe_phase, parse_line

OUTPUT_TAIL_BYTES = 64 * 1024
"""How much of the script's ordinary output is kept for the classifier."""

TICK_S = 0.5
"""How often the progress callback hears the elapsed time while nothing else happens."""

ProgressFn = Callable[[str, float], None]


def script_source() -> str:
    """The child script's text (shipped inside the package)."""
    return resources.files("autoglm_doctor.smoke").joinpath("_script.py").read_text(encoding="utf-8")


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the run: the deployment's own, made offline and crash-talkative.

    Offline, because a smoke test must load what is on disk and never download; the fault
    handler, so that a segfault or an abort names the Python frame it happened in.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return env


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process in the script's group (POSIX) or the script itself."""
    if sys.platform != "win32":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:  # pragma: no cover - no process groups on Windows
        proc.kill()


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a killed child, with a bound (a process stuck in the kernel is left to init)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=procs.REAP_WAIT_S)


def run_script(
    request: SmokeRequest,
    interpreter: str,
    timeout: float,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> SmokeRun:
    """Run one smoke test and collect its events; never raises for what the child does."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        proc = subprocess.Popen(  # noqa: S603 - the user's own interpreter, our own script
            # no bytecode, and the working directory (a model folder's json.py) off sys.path: see procs
            procs.isolated_c_argv(interpreter, script_source(), request.to_json()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=procs.child_environment(child_environment(env)),
            start_new_session=sys.platform != "win32",
        )
        procs.register(proc)  # SIGINT/SIGTERM kill its group too (and it goes at once if they came first)
    except OSError as exc:
        return SmokeRun(
            events=[],
            returncode=None,
            timed_out=False,
            elapsed_s=0.0,
            output="",
            interpreter=interpreter,
            start_error=f"cannot run {interpreter}: {exc.strerror or exc}",
        )
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - both are pipes
    events: list[dict[str, object]] = []
    output = bytearray()
    pending = b""
    timed_out = False
    finished = False
    phase = "start"
    last_tick = 0.0
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, "proto")
        sel.register(proc.stderr, selectors.EVENT_READ, "log")
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = not finished
                break
            ready = sel.select(timeout=min(TICK_S, deadline - now))
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if key.data == "log":
                    output += chunk
                    del output[:-OUTPUT_TAIL_BYTES]
                    continue
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > OUTPUT_TAIL_BYTES:  # one endless line: kept as output, bounded
                    output += pending[-OUTPUT_TAIL_BYTES:]
                    del output[:-OUTPUT_TAIL_BYTES]
                    pending = b""
                for raw in lines:
                    text = raw.decode("utf-8", errors="replace")
                    event = parse_line(text)
                    if event is None:
                        output += raw + b"\n"
                        continue
                    events.append(event)
                    if event.get("event") == "phase":
                        phase = describe_phase(event)
                        if progress is not None:
                            progress(phase, time.monotonic() - started)
                    elif event.get("event") in ("result", "error"):
                        finished = True
            if progress is not None and time.monotonic() - last_tick >= TICK_S:
                last_tick = time.monotonic()
                progress(phase, last_tick - started)
            if not ready and proc.poll() is not None:
                break  # exited and the pipes are drained (a grandchild may still hold them open)
    if timed_out:
        kill_group(proc)
        _reap(proc)
        returncode: int | None = None
    else:
        try:
            returncode = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = not finished
            kill_group(proc)
            _reap(proc)
            returncode = None if timed_out else proc.returncode
        kill_group(proc)  # whatever the script left running goes with it
    procs.unregister(proc)
    proc.stdout.close()
    proc.stderr.close()
    if pending and parse_line(pending.decode("utf-8", errors="replace")) is None:
        output += pending
    return SmokeRun(
        events=events,
        returncode=returncode,
        timed_out=timed_out,
        elapsed_s=time.monotonic() - started,
        output=output.decode("utf-8", errors="replace"),
        interpreter=interpreter,
    )
