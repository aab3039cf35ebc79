"""sha256 of weight files, in parallel, and the reference hashes to compare them with.

References, in order of trust: the Hugging Face cache's blob names (a blob of an LFS file is
named by its sha256), the ``.metadata`` files ``hf download --local-dir`` leaves behind (their
etag is the sha256 of LFS files), and a manifest in the model folder.

The manifest is a file named ``SHA256SUMS``, ``SHA256SUMS.txt``, ``sha256sums.txt`` or
``checksums.sha256`` in the model folder, in the format ``sha256sum`` writes and
``sha256sum -c`` reads: one ``<64 hex digits> <two spaces or ' *'><file name>`` per line
(``#`` comments and blank lines ignored); the BSD form ``SHA256 (name) = <hex>`` is accepted too.
Create one with ``cd MODEL && sha256sum *.safetensors > SHA256SUMS``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from autoglm_doctor.safeio import read_text

CHUNK_BYTES = 8 << 20
"""Read size: large reads keep the GIL released inside hashlib for most of the time."""

MANIFEST_NAMES = ("SHA256SUMS", "SHA256SUMS.txt", "sha256sums.txt", "checksums.sha256")
"""Manifest file names looked for in the model folder, first found wins."""

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_GNU_LINE = re.compile(r"^\\?([0-9a-fA-F]{64}) [ *](.+)$")
_BSD_LINE = re.compile(r"^SHA256 ?\((.+)\) ?= ?([0-9a-fA-F]{64})$")


@dataclass(frozen=True, slots=True)
class HashOutcome:
    """The sha256 of one file, or why it could not be computed."""

    path: Path
    """The file hashed."""
    sha256: str = ""
    """Hex digest; empty on error."""
    error: str = ""
    """Why hashing failed (unreadable, vanished...)."""


OUTSIDE = "names a file outside the model folder: not read"
"""The error of a manifest entry that is absolute or climbs out of the folder with ``..``."""


def inside_folder(name: str) -> bool:
    """Whether a manifest's file name stays inside the model folder (relative, no ``..`` part)."""
    if not name or "\x00" in name or os.path.isabs(name) or name.startswith(("/", "\\")) or ":" in name[:2]:
        return False
    return ".." not in re.split(r"[\\/]+", name)


def sha256_file(path: Path, progress: Callable[[int], None] | None = None, chunk: int = CHUNK_BYTES) -> str:
    """Hex sha256 of one file, read in large chunks into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    with open(fd, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(view)
            if not count:
                break
            digest.update(view[:count])
            if progress is not None:
                progress(count)
    return digest.hexdigest()


def default_workers() -> int:
    """One thread per CPU the process may use (hashing is CPU-bound once the files are cached)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus)


def hash_files(paths: Iterable[Path], *, workers: int | None = None, progress: bool = False) -> list[HashOutcome]:
    """sha256 of every file, hashed in parallel threads, largest first; same order as ``paths``.

    ``progress`` shows a rich progress bar with bytes per second on stderr.
    """
    files = list(paths)
    if not files:
        return []
    sizes = {path: _size(path) for path in files}
    order = sorted(files, key=lambda p: -sizes[p])  # big files first: the pool drains evenly
    bar = _ProgressBar(sum(sizes.values())) if progress else None

    def one(path: Path) -> HashOutcome:
        try:
            return HashOutcome(path, sha256=sha256_file(path, bar.advance if bar else None))
        except OSError as exc:
            return HashOutcome(path, error=exc.strerror or str(exc))

    try:
        from concurrent.futures import ThreadPoolExecutor  # only with --verify-hashes

        with ThreadPoolExecutor(max_workers=min(workers or default_workers(), len(files))) as pool:
            done = dict(zip(order, pool.map(one, order), strict=True))
    finally:
        if bar is not None:
            bar.close()
    return [done[path] for path in files]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _ProgressBar:
    """A rich progress bar on stderr: bytes done, total, speed and time left."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("verifying hashes"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._progress.add_task("hash", total=total)
        self._progress.start()

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def close(self) -> None:
        self._progress.stop()


@dataclass(frozen=True, slots=True)
class Manifest:
    """A sha256 manifest found in the model folder."""

    name: str
    """Its file name."""
    hashes: dict[str, str]
    """File name (relative, ``/``-separated) -> expected lower-case hex sha256."""
    bad_lines: list[int]
    """1-based numbers of lines that are neither format (the first few)."""


def read_manifest(folder: Path) -> Manifest | None:
    """The first manifest in ``folder``, parsed; None when there is none."""
    for name in MANIFEST_NAMES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            text = read_text(path, "manifest", errors="replace")
        except OSError:
            return Manifest(name=name, hashes={}, bad_lines=[0])
        return parse_manifest(name, text)
    return None


def parse_manifest(name: str, text: str) -> Manifest:
    """Parse ``sha256sum`` output (GNU or BSD form)."""
    hashes: dict[str, str] = {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        gnu = _GNU_LINE.match(line)
        bsd = _BSD_LINE.match(line) if gnu is None else None
        if gnu is not None:
            digest, file = gnu.group(1), gnu.group(2)
        elif bsd is not None:
            file, digest = bsd.group(1), bsd.group(2)
        else:
            if len(bad) < 5:
                bad.append(number)
            continue
        file = file.strip()
        hashes[file[2:] if file.startswith("./") else file] = digest.lower()
    return Manifest(name=name, hashes=hashes, bad_lines=bad)
