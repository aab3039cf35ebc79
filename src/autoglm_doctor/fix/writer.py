"""Writing the fix file: atomically, into the target's folder, never over a file without ``--force``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import FixError


class FileExists(FixError):  # noqa: N818 - reads as the condition it reports
    """The output file exists and ``--force`` was not given."""


def refuse_existing(path: Path, *, force: bool) -> None:
    """Raise :class:`FileExists` when ``path`` exists and may not be replaced."""
    if not force and (path.exists() or path.is_symlink()):
        raise FileExists(
            f"{path} already exists; the doctor never overwrites a file unasked. Pass --force to replace it, "
            "or --fix-output OTHER-FILE"
        )


def _mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to a temporary file beside ``path``, then move it into place in one step.

    Without ``force`` the move is a hard link, which fails when ``path`` appeared meanwhile, so an
    existing file is never replaced, not even by a race. Readers see the old file or the new one,
    never half of either.
    """
    refuse_existing(path, force=force)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FixError(f"cannot write into {folder}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode())
        if force:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            refuse_existing(path, force=False)
            raise
        except OSError:  # a file system without hard links: check, then move
            refuse_existing(path, force=False)
            os.replace(tmp, path)
    except FixError:
        raise
    except OSError as exc:
        raise FixError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
