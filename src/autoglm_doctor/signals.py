"""SIGTERM handled like Ctrl-C: the CLI kills every child process group and exits 130.

Python turns SIGINT into KeyboardInterrupt by itself; SIGTERM (``kill``, ``docker stop``,
``timeout``) would end the doctor at once and leave the probe's or the smoke test's process
group running (they are in sessions of their own). :func:`handle_termination` makes SIGTERM
raise :class:`Interrupted` in the main thread instead, so the same clean-up runs. The exit
status is 130 for both (DESIGN.md: 130 interrupted); docs/security.md says so.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Interrupted(BaseException):  # noqa: N818 - reads as the condition, like KeyboardInterrupt
    """SIGTERM arrived; like KeyboardInterrupt, no ``except Exception`` catches it."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def handle_termination() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Interrupted` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except (ValueError, OSError):  # not allowed here (an embedding host)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
