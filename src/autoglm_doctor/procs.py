"""Every subprocess the doctor starts goes through here: bounded in time, output and reach.

A child (:class:`Child`) is

- the leader of a new session, so of its own process group, which is killed as a whole;
- started with stdin closed (or fed a fixed input), stdout and stderr read with a cap
  (:data:`OUTPUT_CAP_BYTES` unless the caller says otherwise: adb once buffered 6 GB in 5 s);
- given one deadline for the whole exchange, not per read. At the deadline (or when the output
  passes the cap) its group gets SIGKILL and is reaped with a bounded wait
  (:data:`REAP_WAIT_S`); a process that left the group (``setsid``) but still holds the output
  pipes is found through ``/proc`` and killed too, so the run ends on time (before, a
  ``setsid sleep 150 &`` in a probed interpreter held the run for 150 s);
- registered while it runs, so that SIGINT/SIGTERM (:func:`kill_all`, called by the CLI) leaves
  nothing behind;
- marked: its environment carries :data:`MARK_VARIABLE` with a value of its own, which everything
  it starts inherits. When it is killed for its deadline or its cap, every process still carrying
  the mark is killed too (found through ``/proc``): a hung tool's daemon that left the group and
  closed the pipes (``setsid sleep 150 >/dev/null &``) outlived the run before. A child that ends
  by itself keeps what it started on purpose outside its group (adb's server stays, as adb means).

Python children run with ``PYTHONDONTWRITEBYTECODE=1`` (:func:`child_environment`), which
reaches every Python they start too: the doctor never writes ``__pycache__`` into what it inspects.
Why not ``subprocess.run(timeout=...)``: after the timeout it kills only the child and then
waits for the pipes without a bound, and it buffers output without one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

OUTPUT_CAP_BYTES = 16 << 20
"""Default cap on what is kept of a child's stdout plus stderr."""
EXIT_GRACE_S = 1.0
"""After the child exits, how long its pipes may stay open (held by something it started)."""
REAP_WAIT_S = 5.0
"""How long to wait for a killed child to be reaped before giving up on it."""
MARK_VARIABLE = "AUTOGLM_DOCTOR_CHILD"
"""Environment variable marking a child and everything it starts (a random value per child)."""

_live: dict[int, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()
_stopping = threading.Event()
"""Set by ``kill_all(final=True)``: the doctor is exiting, so no thread may start another child."""


def python_argv(interpreter: str, *args: str) -> list[str]:
    """The command line of a Python child, to run with :func:`child_environment`.

    Bytecode is turned off by ``PYTHONDONTWRITEBYTECODE=1`` in the environment rather than by
    ``-B``: the variable also reaches every Python the child starts (pip's build backends,
    torch's workers), and the first argument stays what the target expects (``-`` or ``-c``).
    """
    return [interpreter, *args]


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours (or ``base``), with bytecode writing off for every Python in it."""
    env = dict(os.environ if base is None else base)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


ISOLATE_CWD = "import sys\nif sys.path and sys.path[0] in ('', '.'):\n    del sys.path[0]\n"
"""The ``-P`` of Pythons older than 3.11: the working directory leaves ``sys.path`` before any import."""


def isolated_c_argv(interpreter: str, source: str, *args: str) -> list[str]:
    """``python -c SOURCE ARGS`` with the working directory off ``sys.path`` before SOURCE runs.

    ``python -c`` puts the working directory first on ``sys.path``: a ``json.py`` in a model
    folder would be imported by the child's ``import json``. ``-P`` (3.11+) is not available
    on every target, so a bootstrap drops the entry and then runs SOURCE (passed as the first
    argument, so its ``from __future__`` imports still come first); SOURCE sees ``ARGS`` in
    ``sys.argv[1:]``.
    """
    bootstrap = ISOLATE_CWD + "exec(compile(sys.argv.pop(1), '<autoglm-doctor>', 'exec'))\n"
    return python_argv(interpreter, "-c", bootstrap, source, *args)


@dataclass(frozen=True, slots=True)
class Completed:
    """How a child's run ended."""

    returncode: int | None
    """Exit status (negative: killed by that signal); None when it was killed for the deadline or the cap."""
    stdout: bytes
    """What it wrote on stdout (with stderr when merged), at most the cap."""
    stderr: bytes
    """What it wrote on stderr, at most the cap."""
    timed_out: bool = False
    """The deadline passed before it finished."""
    truncated: bool = False
    """Its output passed the cap; it was killed then."""
    elapsed_s: float = 0.0
    """Wall-clock seconds from start to end."""


class Child:
    """One running child in its own process group; :meth:`finish` bounds everything after start."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        feed: bytes | None = None,
        merge_stderr: bool = False,
    ) -> None:
        """Start ``argv``; raises OSError when it cannot be started."""
        self.started = time.monotonic()
        self.feed = feed
        self.mark = uuid.uuid4().hex
        marked = dict(os.environ if env is None else env)
        marked[MARK_VARIABLE] = self.mark
        if _stopping.is_set():
            raise OSError(errno.ECANCELED, "the doctor is stopping (interrupted)")
        self.proc = subprocess.Popen(  # noqa: S603 - every caller passes a resolved tool or interpreter
            list(argv),
            stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            cwd=cwd,
            env=marked,
            start_new_session=os.name == "posix",
        )
        with _lock:
            _live[self.proc.pid] = self.proc
        if _stopping.is_set():  # interrupted while it started: it goes at once
            self.kill()
            raise OSError(errno.ECANCELED, "the doctor is stopping (interrupted)")

    @property
    def pid(self) -> int:
        """The child's process id (and its process group's)."""
        return self.proc.pid

    def finish(self, timeout: float, cap: int = OUTPUT_CAP_BYTES) -> Completed:
        """Feed the input, read the output until exit or ``timeout`` s after the start; kill, reap."""
        deadline = self.started + timeout
        proc = self.proc
        pipes = [p for p in (proc.stdout, proc.stderr) if p is not None]
        outs: dict[int, bytearray] = {pipe.fileno(): bytearray() for pipe in pipes}
        out_fd = proc.stdout.fileno() if proc.stdout is not None else -1
        err_fd = proc.stderr.fileno() if proc.stderr is not None else -1
        timed_out = truncated = False
        still_open = [pipe.fileno() for pipe in pipes]
        try:
            with selectors.DefaultSelector() as sel:
                for pipe in pipes:
                    sel.register(pipe, selectors.EVENT_READ)
                pending = memoryview(self.feed or b"")
                if proc.stdin is not None:
                    os.set_blocking(proc.stdin.fileno(), False)
                    sel.register(proc.stdin, selectors.EVENT_WRITE)
                timed_out, truncated = self._pump(sel, outs, pending, deadline, cap)
                still_open = [key.fd for key in sel.get_map().values() if key.fileobj is not proc.stdin]
        finally:
            self._end(still_open)
            for pipe in pipes:
                with contextlib.suppress(OSError):
                    pipe.close()
        killed = timed_out or truncated
        if killed:
            kill_marked(self.mark)
        return Completed(
            returncode=None if killed else proc.returncode,
            stdout=bytes(outs.get(out_fd, b"")),
            stderr=bytes(outs.get(err_fd, b"")),
            timed_out=timed_out,
            truncated=truncated,
            elapsed_s=time.monotonic() - self.started,
        )

    def _pump(
        self,
        sel: selectors.BaseSelector,
        outs: dict[int, bytearray],
        pending: memoryview,
        deadline: float,
        cap: int,
    ) -> tuple[bool, bool]:
        """Move input and output until both pipes end, the deadline or the cap: (timed out, truncated)."""
        proc = self.proc
        exited_at: float | None = None
        total = 0
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if now >= deadline:
                return exited_at is None, False
            if exited_at is not None and now >= exited_at + EXIT_GRACE_S:
                return False, False  # exited; whatever holds its pipes open is killed by _end
            limit = deadline - now if exited_at is None else exited_at + EXIT_GRACE_S - now
            for key, _ in sel.select(timeout=min(limit, 0.25)):
                if key.fileobj is proc.stdin:
                    try:
                        written = os.write(key.fd, pending[:65536])
                    except BlockingIOError:
                        continue
                    except OSError:  # it exited without reading all of it
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        sel.unregister(key.fileobj)
                        with contextlib.suppress(OSError):
                            key.fileobj.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                room = cap - total
                total += len(chunk)
                outs[key.fd] += chunk[: max(0, room)]
                if total > cap:
                    return False, True
        if proc.poll() is None:  # it closed its output but runs on: wait for it, within the deadline
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return True, False
        return False, False

    def _end(self, pipe_fds: list[int]) -> None:
        """Kill the group (and whatever else holds our pipes), reap with a bound, unregister."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        holders = _pipe_holders(pipe_fds)
        kill_group(self.proc)
        for pid in holders:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _await_gone(holders)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=REAP_WAIT_S)
        with _lock:
            _live.pop(self.proc.pid, None)

    def kill(self) -> None:
        """Kill the group now and reap it (bounded); the output is discarded."""
        pipes = [p for p in (self.proc.stdout, self.proc.stderr) if p is not None and not p.closed]
        self._end([p.fileno() for p in pipes])
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.close()


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    feed: bytes | None = None,
    merge_stderr: bool = False,
    cap: int = OUTPUT_CAP_BYTES,
) -> Completed:
    """Run ``argv`` to the end within ``timeout`` seconds in all; raises OSError when it cannot start."""
    return Child(argv, cwd=cwd, env=env, feed=feed, merge_stderr=merge_stderr).finish(timeout, cap)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process in ``proc``'s group (POSIX), or ``proc`` itself."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()


def register(proc: subprocess.Popen[bytes]) -> None:
    """Track a child started elsewhere in its own session, so that :func:`kill_all` reaches it."""
    with _lock:
        _live[proc.pid] = proc
    if _stopping.is_set():
        kill_group(proc)


def unregister(proc: subprocess.Popen[bytes]) -> None:
    """Stop tracking a child (it was reaped)."""
    with _lock:
        _live.pop(proc.pid, None)


def kill_all(*, final: bool = False) -> int:
    """Kill every running child's process group (on SIGINT/SIGTERM); how many there were.

    ``final``: the doctor is exiting; from now on no child may start (a thread still gathering
    facts would otherwise start one after this sweep, and leave it running).
    """
    if final:
        _stopping.set()
    with _lock:
        procs = list(_live.values())
        _live.clear()
    for proc in procs:
        kill_group(proc)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            proc.wait(timeout=REAP_WAIT_S)
    return len(procs)


def kill_marked(mark: str) -> list[int]:
    """SIGKILL every process (of ours to read, Linux ``/proc``) whose environment carries ``mark``; their pids."""
    needle = f"{MARK_VARIABLE}={mark}".encode()
    killed = []
    for pid in _other_processes():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle not in handle.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except OSError:  # gone, or not ours to read or signal
            continue
        killed.append(pid)
    _await_gone(killed)
    return killed


def _other_processes() -> list[int]:
    """Every process but this one, from Linux ``/proc`` (none elsewhere, or when it cannot be listed)."""
    if not sys.platform.startswith("linux"):
        return []
    me = os.getpid()
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
    except OSError:
        return []


def _await_gone(pids: list[int], bound_s: float = 1.0) -> None:
    """Wait (at most ``bound_s``) until killed processes that are not our children have exited."""
    deadline = time.monotonic() + bound_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.01)


def _pipe_holders(fds: list[int]) -> list[int]:
    """Processes (other than us) holding the other end of our pipes open: Linux ``/proc`` only."""
    if not fds or not sys.platform.startswith("linux"):
        return []
    wanted = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            wanted.add(f"pipe:[{os.fstat(fd).st_ino}]")
    found = []
    for pid in _other_processes():
        folder = f"/proc/{pid}/fd"
        try:
            links = os.listdir(folder)
        except OSError:
            continue
        for name in links:
            try:
                if os.readlink(f"{folder}/{name}") in wanted:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found
