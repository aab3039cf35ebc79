"""A phone-sized PNG screenshot made with zlib and struct, and the size of any PNG.

The doctor must not need Pillow to probe an endpoint, so the synthetic screenshot is
written by hand: a 1080x2400 RGB image (the size of the client's own fallback screenshot)
with a status bar, a search field and a grid of app icons, so a vision tower sees edges,
not a flat colour. Rows repeat, so it compresses to a few kilobytes.
"""

from __future__ import annotations

import base64
import functools
import struct
import zlib

PHONE_SIZE = (1080, 2400)
"""Width and height of the synthetic screenshot (the client's fallback size, a common phone)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _row(width: int, y: int, height: int) -> bytes:
    background = (242, 244, 247)
    if y < height * 0.03:  # status bar
        return bytes((24, 24, 28)) * width
    if 0.06 * height < y < 0.1 * height:  # search field
        margin = width // 12
        return bytes(background) * margin + bytes((255, 255, 255)) * (width - 2 * margin) + bytes(background) * margin
    band = int((y - 0.15 * height) // (0.12 * height))
    inside = 0.15 * height <= y < 0.87 * height and (y - 0.15 * height) % (0.12 * height) < 0.08 * height
    if not inside:
        return bytes(background) * width
    out = bytearray()
    cell = width // 4
    for column in range(4):
        colour = ((60 + 50 * column) % 256, (90 + 40 * band) % 256, (200 - 30 * column) % 256)
        icon = cell * 2 // 3
        pad = (cell - icon) // 2
        out += bytes(background) * pad + bytes(colour) * icon + bytes(background) * (cell - icon - pad)
    out += bytes(background) * (width - len(out) // 3)
    return bytes(out)


@functools.lru_cache(maxsize=4)
def synthetic_png(width: int = PHONE_SIZE[0], height: int = PHONE_SIZE[1]) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` that looks like a phone's home screen."""
    rows = [b"\x00" + _row(width, y, height) for y in range(height)]  # filter type 0 (None) per row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG's IHDR; None when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first SOF marker (hdc snapshots are JPEG); None when not a JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = struct.unpack(">H", data[index + 2 : index + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Size of a PNG or JPEG image; None for anything else."""
    return png_size(data) or jpeg_size(data)


def data_url(data: bytes) -> str:
    """The ``data:`` URL the client puts in ``image_url`` (it always says image/png, as the client does)."""
    mime = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
