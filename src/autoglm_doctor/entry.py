"""The console entry point: starts gathering facts for ``check`` while the CLI framework loads.

Importing typer and click takes about 100 ms; the interpreter probe takes about as long, in
another process. So before the CLI is imported, the few options that decide what is gathered
(``--python``, ``--config``, ``--model``, ``--verify-hashes``) are read from the arguments and
the gathering starts in a thread. ``check`` takes that result only when its own, fully parsed
options ask for exactly the same facts; otherwise it gathers again. Anything unusual in the
arguments (help, a saved snapshot, a malformed option) simply means no early start.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_GATHER_FLAGS = {"--python": "python", "--config": "config", "--model": "model"}


class Background:
    """Run one call in a thread; ``result()`` joins it and re-raises what it raised."""

    def __init__(self, func: Any, *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = func(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
                self._error = exc

        self._thread = threading.Thread(target=target, name="gather", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        """Wait for the call and return its value (or raise its exception)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


_early: tuple[Any, Background] | None = None


def gather_options_from(args: list[str]) -> dict[str, Any] | None:
    """The gathering options ``check ARGS`` asks for, or None when the arguments are not plain."""
    if not args or args[0] != "check":
        return None
    values: dict[str, Any] = {"python": None, "config": None, "model": None, "verify_hashes": False}
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--" or arg in ("--help", "-h") or arg.startswith("--snapshot"):
            return None
        name, eq, inline = arg.partition("=")
        if name == "--verify-hashes" and not eq:
            values["verify_hashes"] = True
        elif name in _GATHER_FLAGS:
            value = inline if eq else next(rest, None)
            if value is None or (not eq and value.startswith("-")):
                return None
            values[_GATHER_FLAGS[name]] = value
    for key in ("config",):
        if values[key] is not None:
            values[key] = Path(values[key])
    return values


def start_early(args: list[str]) -> None:
    """Start gathering for ``check`` now, if the arguments say plainly what to gather."""
    global _early
    values = gather_options_from(args)
    if values is None:
        return
    from autoglm_doctor.probe.collect import GatherOptions, gather

    options = GatherOptions(**values)
    _early = (options, Background(gather, options))


def take_early(options: Any) -> Background | None:
    """The early gathering when it was for exactly ``options``; a stale one is waited for and dropped."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if early[0] == options:
        return early[1]
    finish_early(early[1])
    return None


def finish_early(background: Background | None = None) -> None:
    """Wait for an early gathering nobody took, so that its probe does not outlive the run."""
    global _early
    if background is None and _early is not None:
        background, _early = _early[1], None
    if background is not None:
        try:
            background.result()
        except Exception:  # noqa: BLE001, S110 - its result is not wanted, only its end
            pass


def main() -> int:
    """``autoglm-doctor``: start gathering early, then run the CLI."""
    import sys

    start_early(sys.argv[1:])
    from autoglm_doctor.cli import main as cli_main

    try:
        return cli_main()
    finally:
        finish_early()
