"""The one bounded reader for every file the doctor opens, and the one guarded JSON decoder.

Why not ``Path.read_bytes()``: it blocks forever on a FIFO, never ends on ``/dev/zero`` and
reads an 8 GB sparse file into memory (measured: ``--config /dev/zero`` died of MemoryError
after 16 s; a FIFO as ``--config`` hung). :func:`read_bytes` opens without blocking, refuses
anything but a regular file, and reads at most the cap of the file's kind (:data:`LIMITS`, also
listed in docs/security.md). A refusal is an :class:`OSError` (``strerror`` says why), so every
caller's existing "cannot read FILE: reason" path turns it into a finding or a usage error.

:func:`loads_json` turns what the stdlib decoder raises on hostile input (nesting deeper than
the interpreter's recursion limit, integers of more than 4300 digits) and nesting deeper than
:data:`MAX_DEPTH` (which later walks over the data would not survive) into a ``ValueError``
whose message names the problem.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

MiB = 1 << 20

LIMITS: dict[str, int] = {
    "config": 8 * MiB,
    "pack": 1 * MiB,
    "snapshot": 64 * MiB,
    "report": 64 * MiB,
    "request": 64 * MiB,
    "model metadata": 32 * MiB,
    "manifest": 16 * MiB,
    "metadata": 4 * MiB,
    "screenshot": 32 * MiB,
}
"""Largest file of each kind the doctor reads (bytes); a larger one is a finding, never read."""

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted in any JSON, YAML or TOML the doctor reads."""

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class RefusedFile(OSError):
    """A file the bounded reader will not read (not a regular file, or over its kind's cap)."""


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_bytes(path: str | os.PathLike[str], kind: str, limit: int | None = None, *, head: bool = False) -> bytes:
    """At most ``limit`` (default: ``LIMITS[kind]``) bytes of the regular file at ``path``.

    Raises :class:`IsADirectoryError` for a folder, :class:`RefusedFile` for a FIFO, device or
    socket (opened without blocking, never read) or a file over the cap, and any other
    :class:`OSError` as ``open`` raises it.
    """
    cap = LIMITS[kind] if limit is None else limit  # head=True: the first ``limit`` bytes, never refused for size
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFile(errno.EINVAL, f"is {file_kind(info.st_mode)}, not a regular file", str(path))
        if head:
            return os.read(fd, cap)
        if info.st_size > cap:
            raise RefusedFile(
                errno.EFBIG,
                f"is {_size(info.st_size)}, over the {_size(cap)} limit for a {kind} file",
                str(path),
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(cap + 1 - total, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:  # it grew while being read
                raise RefusedFile(errno.EFBIG, f"is over the {_size(cap)} limit for a {kind} file", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_head(path: str | os.PathLike[str], count: int) -> bytes:
    """The first ``count`` bytes of a regular file (a FIFO or device raises :class:`RefusedFile`)."""
    return read_bytes(path, "head", count, head=True)


def read_text(path: str | os.PathLike[str], kind: str, limit: int | None = None, errors: str = "strict") -> str:
    """:func:`read_bytes` decoded as UTF-8 (a BOM is dropped); ``errors`` as for ``bytes.decode``."""
    return read_bytes(path, kind, limit).decode("utf-8-sig", errors)


def folder_state(path: Path) -> tuple[bool, str]:
    """(``path`` is a folder, why it could not be told): never raises.

    ``Path.is_dir()`` raises for a parent folder that may not be entered (EACCES) or a name longer
    than the file system allows (ENAMETOOLONG, a 300-character ``refs/main``); here those are a
    reason to report, not a crash. A path that does not exist is simply not a folder.
    """
    try:
        return stat.S_ISDIR(path.stat().st_mode), ""
    except (FileNotFoundError, NotADirectoryError):
        return False, ""
    except OSError as exc:
        return False, exc.strerror or str(exc)
    except ValueError as exc:  # an embedded NUL byte
        return False, str(exc)


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def depth_over(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and mappings in ``data`` nest deeper than ``limit`` (iterative: any depth is safe)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list, tuple)))
    return False


class JsonRefused(ValueError):
    """JSON the guarded decoder refuses: too deep, or an integer too long to convert."""


def loads_json(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``ValueError`` (never RecursionError) on hostile input.

    ``json.JSONDecodeError`` passes through unchanged (callers quote its line and column);
    nesting deeper than ``max_depth`` or than the recursion limit, and integers of more than
    the interpreter's digit limit (4300), raise :class:`JsonRefused`.
    """
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise JsonRefused(f"nested more than {max_depth} levels deep") from exc
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise JsonRefused(f"holds a number too long to read ({str(exc).split(':')[0]})") from exc
    if depth_over(data, max_depth):
        raise JsonRefused(f"nested more than {max_depth} levels deep")
    return data
