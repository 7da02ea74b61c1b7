"""A tiny PNG reader for screenshot checks: 8-bit RGB/RGBA, non-interlaced, pure Python.

Enough for what headless Chromium writes (``--screenshot``); anything else raises
:class:`PNGError` rather than guessing.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel (RGB, RGBA)


class PNGError(ValueError):
    """Not a PNG, or a kind of PNG this reader does not handle."""


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int  # 3 (RGB) or 4 (RGBA)
    pixels: bytes  # unfiltered rows, top to bottom, ``channels`` bytes per pixel

    def rgb(self, x: int, y: int) -> tuple[int, int, int]:
        at = (y * self.width + x) * self.channels
        return self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]

    def colour_counts(self) -> Counter[tuple[int, int, int]]:
        """How many pixels have each RGB colour (alpha ignored)."""
        step, data = self.channels, self.pixels
        return Counter(zip(data[0::step], data[1::step], data[2::step], strict=True))

    def count(self, colour: str | tuple[int, int, int]) -> int:
        """Pixels of exactly this colour (``"#1f6feb"`` or an RGB tuple)."""
        return self.colour_counts()[hex_rgb(colour) if isinstance(colour, str) else colour]


def hex_rgb(colour: str) -> tuple[int, int, int]:
    text = colour.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"expected #rrggbb, got {colour!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def read_png(source: str | Path | bytes) -> Image:
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data.startswith(SIGNATURE):
        raise PNGError("not a PNG file")
    offset, header, compressed = len(SIGNATURE), b"", bytearray()
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if len(body) != length:
            raise PNGError("truncated chunk")
        offset += 12 + length  # length, type, body, CRC
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    if len(header) != 13:
        raise PNGError("missing IHDR")
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in _CHANNELS:
        raise PNGError(f"unsupported: bit depth {depth}, colour type {colour_type}")
    if interlace:
        raise PNGError("interlaced PNGs are not supported")
    channels = _CHANNELS[colour_type]
    raw = zlib.decompress(bytes(compressed))
    return Image(width, height, channels, _unfilter(raw, width, height, channels))


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytes:
    stride = width * bpp
    if len(raw) < height * (stride + 1):
        raise PNGError("image data too short")
    out = bytearray(height * stride)
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upper_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], upper_left)) & 0xFF
        elif kind != 0:
            raise PNGError(f"bad filter type {kind} in row {row}")
        out[row * stride : (row + 1) * stride] = line
        previous = line
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
