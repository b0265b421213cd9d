#!/usr/bin/env python3
"""Draws the dashboard's app icons (PNG) with the standard library only.

    python3 scripts/make_icons.py

writes crates/tailmon-server/assets/icons/icon-{192,512}.png (rounded, for
browsers) and maskable-{192,512}.png (full bleed, the mark inside the safe
zone, for launchers that crop). The mark: the dashboard's green status dot
in a ring, on its indigo-to-cyan gradient.
"""

import math
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "tailmon-server", "assets", "icons")


def png(path, size, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * size * 4:(y + 1) * size * 4]) for y in range(size))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def mix(a, b, t):
    return tuple(a[i] + (b[i] - a[i]) * t for i in range(len(a)))


def draw(size, maskable):
    pixels = bytearray(size * size * 4)
    corner = 0 if maskable else size * 0.22
    scale = 0.8 if maskable else 1.0  # maskable: the mark inside the safe zone
    c = size / 2
    top, bottom = (67, 56, 202), (8, 145, 178)
    for y in range(size):
        for x in range(size):
            px, py = x + 0.5, y + 0.5
            # Coverage of the rounded square (1 inside, 0 outside, smooth edge).
            dx = max(corner - px, 0, px - (size - corner))
            dy = max(corner - py, 0, py - (size - corner))
            d = math.hypot(dx, dy) if corner else 0
            alpha = 1.0 if corner == 0 else max(0.0, min(1.0, corner - d + 0.5))
            colour = mix(top, bottom, (px + py) / (2 * size))
            r = math.hypot(px - c, py - c) / (size * scale)
            ring = max(0.0, 1 - abs(r - 0.3) / 0.035)  # white ring
            colour = mix(colour, (255, 255, 255), min(1.0, ring * 1.5))
            dot = max(0.0, min(1.0, (0.16 - r) * size * scale / 1.5))  # green dot
            glow = max(0.0, 1 - r / 0.26) ** 2 * 0.35
            colour = mix(colour, (52, 211, 153), max(dot, glow))
            i = (y * size + x) * 4
            pixels[i:i + 4] = bytes([round(colour[0]), round(colour[1]), round(colour[2]), round(alpha * 255)])
    return pixels


def main():
    os.makedirs(OUT, exist_ok=True)
    for size in (192, 512):
        png(os.path.join(OUT, f"icon-{size}.png"), size, draw(size, False))
        png(os.path.join(OUT, f"maskable-{size}.png"), size, draw(size, True))


if __name__ == "__main__":
    main()
