"""Decode a PNG into an RGB(A) pixel array with zlib and numpy only (for screenshot checks).

Handles what browsers write: 8-bit RGB or RGBA, not interlaced. Scanline filters follow the
PNG specification (W3C PNG, section 9): None, Sub and Up are undone with numpy; Average and
Paeth depend on the byte just decoded, so they run byte by byte.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel


def decode_png(data: bytes) -> np.ndarray:
    """Pixels as a (height, width, channels) uint8 array."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    pos, idat, header = len(SIGNATURE), [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = width * bpp
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: running sum per channel, mod 256
            cur = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind in (3, 4):
            cur = _sequential(kind, line, prev, width, bpp)
        else:
            raise ValueError(f"bad PNG filter type {kind} in row {y}")
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def _sequential(kind: int, line: np.ndarray, prev: np.ndarray, width: int, bpp: int) -> np.ndarray:
    # Plain Python ints on bytes: far faster than numpy for a 3-4 byte step.
    f, up = line.tobytes(), prev.tobytes()
    cur = bytearray(len(f))
    for i in range(len(f)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:  # Average
            cur[i] = (f[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0  # Paeth
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (f[i] + pred) & 0xFF
    return np.frombuffer(bytes(cur), dtype=np.uint8)


def colour_stats(pixels: np.ndarray) -> tuple[int, float]:
    """(distinct RGB colours, share of pixels that are not white)."""
    rgb = pixels[..., :3].reshape(-1, 3).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    distinct = len(np.unique(packed))
    non_white = float(np.mean(packed != 0xFFFFFF))
    return distinct, non_white


def has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> bool:
    diff = np.abs(pixels[..., :3].astype(np.int16) - np.array(rgb, dtype=np.int16))
    return bool(np.any(np.all(diff <= tolerance, axis=-1)))
