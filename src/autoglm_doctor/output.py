"""Where the commands' text goes: stdout or a file, with colour and width for a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autoglm_doctor.exits import UsageError


def stderr_is_terminal() -> bool:
    """Live progress and extra hints only go to a person at a terminal."""
    return sys.stderr.isatty()


def color_wanted(stream_is_tty: bool) -> bool:
    """Colour for a terminal, unless NO_COLOR says no (FORCE_COLOR says yes anywhere)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream_is_tty


def width() -> int:
    """The report's line width: $COLUMNS, else the terminal's (at least 60), else 100."""
    try:
        return max(60, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        pass
    if sys.stdout.isatty():  # fit the terminal, so the status column stays on screen
        import shutil

        return max(60, shutil.get_terminal_size((100, 24)).columns)
    return 100


def write_output(text: str, output: Path | None) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` (replacing it, as any output does)."""
    if output is None:
        try:
            sys.stdout.write(text)
        except UnicodeEncodeError:  # a stdout that cannot say ✓ (cp1252, ascii): degrade, never crash
            encoding = sys.stdout.encoding or "ascii"
            sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
        sys.stdout.flush()
        return
    from autoglm_doctor.fix.errors import FixError
    from autoglm_doctor.fix.writer import write_atomically

    try:  # reports and snapshots replace their file (only --fix refuses to)
        write_atomically(output, text, force=True)
    except FixError as exc:
        raise UsageError(str(exc)) from exc
