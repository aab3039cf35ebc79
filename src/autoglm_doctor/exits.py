"""Exit codes, and the one place that turns how a command ended into one of them.

Exit codes (DESIGN.md): 0 nothing failed · 1 a check failed or errored · 2 usage error ·
130 interrupted. An unexpected crash of the doctor itself exits 3 with a short message.
Import-light: the ``check`` fast path (:mod:`autoglm_doctor.entry`) runs without the CLI framework.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

PROG = "autoglm-doctor"


class UsageError(Exception):
    """The command line asks for something impossible (exit 2); the message says what."""


def usage_text(command: str, message: str) -> str:
    """A usage error as the CLI prints it (the same text click prints for ``command``'s errors)."""
    return f"Usage: {PROG} {command} [OPTIONS]\nTry '{PROG} {command} --help' for help.\n\nError: {message}\n"


def run_guarded(func: Callable[[], int], *, program: bool, command: str = "check") -> int:
    """Run one command and map every way it can end to an exit code.

    ``program`` means "run as the program" (the console script, ``python -m``): the process
    ends when this returns. A run is short and makes next to no cyclic garbage, while the
    collector's passes over the freshly imported modules cost tens of ms: it is paused for the
    run (the caller's setting comes back afterwards). As the program, what is loaded is also
    frozen, so that the interpreter's final collection at exit does not walk it once more.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return func()
    except UsageError as exc:
        sys.stderr.write(usage_text(command, str(exc)))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the doctor itself crashed: say so plainly
        print(f"{PROG} crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("AUTOGLM_DOCTOR_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            print("set AUTOGLM_DOCTOR_DEBUG=1 for the traceback, and please report it", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if collecting:
            gc.enable()
        if program:
            gc.freeze()
