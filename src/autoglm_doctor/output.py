"""Where the commands' text goes: stdout or a file, with colour and width for a terminal."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
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


MIN_WIDTH = 60
MAX_WIDTH = 500
"""``COLUMNS`` is clamped to this range: ``COLUMNS=10**19`` must not allocate (or overflow) a line."""


def columns() -> int | None:
    """``$COLUMNS`` clamped to MIN_WIDTH..MAX_WIDTH; None when unset or not a number."""
    text = os.environ.get("COLUMNS", "").strip()
    if not text or len(text) > 18 or not text.isdigit():  # 18 digits: never a giant int
        return None
    return max(MIN_WIDTH, min(int(text), MAX_WIDTH))


def width() -> int:
    """The report's line width: $COLUMNS, else the terminal's (60 to 500: :data:`MAX_WIDTH`), else 100."""
    given = columns()
    if given is not None:
        return given
    if sys.stdout.isatty():  # fit the terminal, so the status column stays on screen
        import shutil

        return max(MIN_WIDTH, min(shutil.get_terminal_size((100, 24)).columns, MAX_WIDTH))
    return 100


def write_output(
    text: str,
    output: Path | None,
    protected: Iterable[Path | None] = (),
    folders: Iterable[tuple[str, Path | None]] = (),
) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` (replacing it, as any output does)."""
    if output is None:
        stream = sys.stdout
        if stream is None:  # started with stdout closed (`>&-`)
            raise OutputUnwritable("stdout is closed: nowhere to write the report (use --output FILE)")
        try:
            try:
                stream.write(text)
            except UnicodeEncodeError:  # a stdout that cannot say ✓ (cp1252, ascii): degrade, never crash
                encoding = stream.encoding or "ascii"
                stream.write(text.encode(encoding, "replace").decode(encoding))
            stream.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise
        except (OSError, ValueError) as exc:  # /dev/full, a closed or vanished descriptor
            _silence_stdout()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OutputUnwritable(f"cannot write the report to stdout: {reason}") from exc
        return
    from autoglm_doctor.fix.errors import FixError
    from autoglm_doctor.fix.writer import write_atomically

    target = check_output_target(output, protected, folders=folders)
    try:  # reports and snapshots replace their file (only --fix refuses to)
        write_atomically(target, text, force=True)
    except FixError as exc:
        raise UsageError(str(exc)) from exc


class OutputUnwritable(Exception):  # noqa: N818 - reads as the condition it reports
    """The report cannot be written where it should go (exit 1, one line on stderr)."""


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's final flush of what is buffered cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def check_output_target(
    output: Path,
    protected: Iterable[Path | None] = (),
    flag: str = "--output",
    folders: Iterable[tuple[str, Path | None]] = (),
) -> Path:
    """Where ``--output`` may write: the file itself, or a symlink's target (the link is kept).

    Refused (a usage error): a device, FIFO, socket or folder (an atomic replace would put a
    regular file in its place: as root, ``--output /dev/null`` would replace /dev/null), any
    file the run reads (``protected``: the config, the request, the snapshot, the pack, the
    interpreter), and any path inside a folder the run inspects (``folders``: (what, folder)
    pairs: the model folder, the target environment), whether named directly or through a link.
    """
    target = Path(os.path.realpath(output))
    # the path as named (its folders resolved, not the file itself) and where it leads: a model folder's
    # config.json may be a link into the hub cache's blobs/, and replacing the link's target rewrites the model
    named = Path(os.path.realpath(output.parent)) / output.name
    for what, folder in folders:
        if folder is None:
            continue
        root = Path(os.path.realpath(folder))
        if any(place == root or root in place.parents for place in (target, named)):
            raise UsageError(
                f"{flag} {output} lies inside {what} ({folder}), which this run inspects and never modifies; "
                "write the report elsewhere"
            )
    try:
        info = target.stat()
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise UsageError(f"{flag} {output}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        from autoglm_doctor.safeio import file_kind

        what = "a folder" if stat.S_ISDIR(info.st_mode) else file_kind(info.st_mode)
        raise UsageError(f"{flag} {output} is {what}; the doctor writes only to a regular file")
    for path in protected:
        if path is None:
            continue
        try:
            same = os.path.samefile(path, target)
        except (OSError, ValueError):
            continue
        if same:
            raise UsageError(f"{flag} {output} is {path}, which this run reads; write elsewhere")
    return target
