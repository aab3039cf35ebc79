"""Read safetensors headers and Git LFS pointers without touching tensor data.

A safetensors file is an 8-byte little-endian header length ``N``, ``N`` bytes of JSON
(``{"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}``)
and then the data section. Offsets are relative to the data section; the safetensors library
refuses a file whose tensors are not laid out back to back from offset 0, whose byte spans do
not match their shape and dtype, or whose size is not exactly ``8 + N + end of the last tensor``.

Everything here reads at most ``8 + N`` bytes of a weight file (1 KiB for an LFS pointer).
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
import struct
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

from autoglm_doctor.safeio import file_kind, loads_json

MAX_HEADER_BYTES = 100_000_000
"""The safetensors library refuses headers larger than this (``HeaderTooLarge``)."""

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
"""Bits per element of every dtype the safetensors format defines."""

LFS_PREFIX = b"version https://git-lfs.github.com/spec/v1"
"""How every Git LFS pointer file starts."""
LFS_POINTER_MAX_BYTES = 1024
"""Pointer files are about 130 bytes; anything larger is not one."""

EXAMPLES_KEPT = 3
"""How many example problems a header summary keeps (the count is always exact)."""


@dataclass(frozen=True, slots=True)
class LfsPointer:
    """A Git LFS pointer file found where real content should be."""

    oid: str = ""
    """The sha256 the pointer names (the real file's hash)."""
    size: int | None = None
    """The real file's size the pointer declares."""


@dataclass
class SafetensorsHeader:
    """What one safetensors file's header says, summarised (no per-tensor lists leave the gatherer)."""

    size: int
    """File size in bytes."""
    header_bytes: int | None = None
    """``N``: length of the JSON header; None when the first 8 bytes could not be read."""
    error: str = ""
    """Why the header does not parse; empty when it does."""
    lfs: LfsPointer | None = None
    """Set when the file is a Git LFS pointer, not safetensors."""
    tensors: dict[str, Any] = field(default_factory=dict)
    """Tensor name -> its header entry (kept in memory for the shard-index cross-check, not in the snapshot)."""
    data_end: int = 0
    """Largest end offset: the data section size the header declares."""
    parameter_count: int = 0
    """Elements over every tensor."""
    bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    """Declared bytes per dtype."""
    layout_problems: list[str] = field(default_factory=list)
    """First few inconsistencies (gaps, overlaps, spans that do not match shape and dtype)."""
    layout_problem_count: int = 0
    """How many inconsistencies there are in all."""
    out_of_range: list[str] = field(default_factory=list)
    """First few tensors whose offsets reach past the data the file holds."""
    out_of_range_count: int = 0
    """How many tensors reach past the data the file holds."""
    unknown_dtypes: list[str] = field(default_factory=list)
    """Dtypes this reader does not know (their byte spans were not checked)."""

    @property
    def expected_size(self) -> int | None:
        """``8 + N + data``: the size the header implies."""
        if self.header_bytes is None or self.error:
            return None
        return 8 + self.header_bytes + self.data_end


def parse_lfs_pointer(head: bytes) -> LfsPointer | None:
    """The LFS pointer in ``head`` (the start of a file), or None when it is not one."""
    if not head.startswith(LFS_PREFIX):
        return None
    text = head.decode("utf-8", "replace")
    oid = re.search(r"^oid sha256:([0-9a-f]{64})\s*$", text, re.MULTILINE)
    size = re.search(r"^size (\d+)\s*$", text, re.MULTILINE)
    return LfsPointer(oid=oid.group(1) if oid else "", size=int(size.group(1)) if size else None)


def _read_upto(fd: int, count: int) -> bytes:
    """Read ``count`` bytes from ``fd`` (fewer only at end of file)."""
    chunks = []
    while count > 0:
        chunk = os.read(fd, min(count, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def read_header(path: Path) -> SafetensorsHeader:
    """Read and validate one safetensors file's header; never reads the data section.

    Raises OSError when the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device is never read (it could block or never end)
            return SafetensorsHeader(size=0, error=f"is {file_kind(info.st_mode)}, not a regular file")
        size = info.st_size
        head = _read_upto(fd, 8)
        if head.startswith(LFS_PREFIX[:8]) and size <= LFS_POINTER_MAX_BYTES:
            head += _read_upto(fd, size - len(head))
            pointer = parse_lfs_pointer(head)
            if pointer is not None:
                return SafetensorsHeader(size=size, lfs=pointer, error="a Git LFS pointer, not the weights")
        if len(head) < 8:
            return SafetensorsHeader(size=size, error=f"only {size} bytes: too short to hold a safetensors header")
        (length,) = struct.unpack("<Q", head)
        result = SafetensorsHeader(size=size, header_bytes=length)
        if length > MAX_HEADER_BYTES:
            result.error = f"declares a {length}-byte header (the limit is {MAX_HEADER_BYTES}): not safetensors"
            return result
        if 8 + length > size:
            result.error = f"declares a {length}-byte header but the file ends after {size - 8}: cut off"
            return result
        raw = _read_upto(fd, length)
    finally:
        os.close(fd)
    _parse_header(raw, result)
    return result


def _parse_header(raw: bytes, result: SafetensorsHeader) -> None:
    if not raw.startswith(b"{"):
        result.error = "the header does not start with '{': not safetensors"
        return
    try:
        header = loads_json(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        result.error = f"the header is not UTF-8 (byte {exc.start})"
        return
    except json.JSONDecodeError as exc:
        result.error = f"the header is not valid JSON ({exc.msg} at byte {exc.pos})"
        return
    except ValueError as exc:  # nested too deeply, a number too long to read
        result.error = f"the header cannot be read: {exc}"
        return
    if not isinstance(header, dict):
        result.error = "the header is not a JSON object"
        return
    header.pop("__metadata__", None)
    bits_of = DTYPE_BITS.get
    by_dtype = result.bytes_by_dtype
    spans: list[tuple[int, int, str, int | None]] = []
    append = spans.append
    params = 0
    # the hot loop of a 100-shard model: a fast path with exact type checks, the messages only on failure
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            if type(shape) is not list or any(type(dim) is not int for dim in shape):
                raise TypeError  # a text dimension multiplied out could build a string of any size
            numel = prod(shape)
        except (TypeError, KeyError, ValueError):
            result.error = _entry_problem(name, entry)
            return
        if (
            type(dtype) is not str
            or type(shape) is not list
            or type(numel) is not int
            or type(begin) is not int
            or type(end) is not int
            or begin < 0
            or end < 0
            or max(numel, end) >= 1 << 64  # beyond any real file: keeps later arithmetic and text small
            or (shape and min(shape) < 0)
        ):
            result.error = _entry_problem(name, entry)
            return
        bits = bits_of(dtype)
        if bits is None and dtype not in result.unknown_dtypes:
            result.unknown_dtypes.append(dtype)
        params += numel
        by_dtype[dtype] = by_dtype.get(dtype, 0) + (end - begin)
        append((begin, end, name, None if bits is None else (numel * bits + 7) // 8))
    result.tensors = header
    result.parameter_count = params
    _check_layout(spans, result)


def _entry_problem(name: str, entry: object) -> str:
    """What is wrong with one tensor's header entry."""
    if not isinstance(entry, dict):
        return f"tensor {name!r} is not described by an object"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str):
        return f"tensor {name!r} has no dtype"
    if not isinstance(shape, list) or not all(isinstance(d, int) and 0 <= d < 1 << 64 for d in shape):
        return f"tensor {name!r} has a malformed shape {reprlib.repr(shape)}"
    return f"tensor {name!r} has malformed data_offsets {reprlib.repr(offsets)}"


def _check_layout(spans: list[tuple[int, int, str, int | None]], result: SafetensorsHeader) -> None:
    """Mirror the safetensors library: spans back to back from 0, each as long as shape x dtype."""
    available = result.size - 8 - (result.header_bytes or 0)
    expected_begin = 0
    for begin, end, name, needed in sorted(spans):
        problem = ""
        if end < begin:
            problem = f"tensor {name!r} data_offsets [{begin}, {end}] end before they begin"
        elif begin != expected_begin:
            gap = "a gap" if begin > expected_begin else "an overlap"
            problem = f"tensor {name!r} starts at {begin}, expected {expected_begin} ({gap} in the data section)"
        elif needed is not None and end - begin != needed:
            problem = (
                f"tensor {name!r} data_offsets [{begin}, {end}] span {end - begin} bytes; "
                f"its shape and dtype need {needed}"
            )
        if problem:
            result.layout_problem_count += 1
            if len(result.layout_problems) < EXAMPLES_KEPT:
                result.layout_problems.append(problem)
        if end > available:
            result.out_of_range_count += 1
            if len(result.out_of_range) < EXAMPLES_KEPT:
                result.out_of_range.append(
                    f"tensor {name!r} data_offsets [{begin}, {end}] reach past the "
                    f"{max(available, 0)} data bytes the file holds"
                )
        expected_begin = max(expected_begin, end)
        result.data_end = max(result.data_end, end)
