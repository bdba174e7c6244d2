"""PNGs made on the spot with Pillow, so the tests need no image files."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def encode(image: Image.Image, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return out.getvalue()


def transparent_logo(width: int = 120, height: int = 60) -> bytes:
    """A logo as it should be: RGBA, an opaque mark in the middle of a clear background."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if width > 2 and height > 2:
        image.paste((20, 90, 200, 255), (1, 1, width - 1, height - 1))
        image.paste((0, 0, 0, 0), (1, 1, 2, 2))  # some inner transparency too
    return encode(image)


def framed_logo(width: int, height: int, opaque_frame_pixels: int) -> bytes:
    """RGBA, clear except ``opaque_frame_pixels`` opaque pixels along the top row (then the
    bottom row) of the frame and an opaque centre."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (1, 1, width - 1, height - 1))
    pixels = image.load()
    assert pixels is not None
    frame = [(x, 0) for x in range(width)] + [(x, height - 1) for x in range(width)]
    for x, y in frame[:opaque_frame_pixels]:
        pixels[x, y] = (255, 0, 0, 255)
    return encode(image)


def opaque(width: int, height: int, mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, (width, height), "white"))
