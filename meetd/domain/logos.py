"""What a theme logo must be before ``finalizeLogos`` accepts it (contract §5).

The contract names the rules (PNG, at most 1 MiB, logos at most 300x300, favicons square and
16-32 px, logos on a transparent background) and leaves the exact limits to meetd; these
constants are those limits, and ``docs/storage.md`` quotes them. :func:`logo_problem`
answers with the first rule broken, as the ``invalidProperty`` code Vonage used.

The checks are ordered so hostile files cost little: the size before anything is decoded,
the width and height from the PNG header before any pixel is (a small file can claim
billions of pixels), and only then the pixels themselves.
"""

from __future__ import annotations

import io
import struct
import warnings

from PIL import Image, UnidentifiedImageError

MAX_LOGO_BYTES = 1_048_576  # 1 MiB
MIN_LOGO_SIDE = 1
MAX_LOGO_SIDE = 300  # width and height of the white and colored logos, each
MIN_FAVICON_SIDE = 16
MAX_FAVICON_SIDE = 32  # favicons are square
# Share of the outermost 1-pixel frame that must be fully transparent (alpha 0) in a logo.
# Not all of it: Vonage's own sample transparent logo (300x300 RGBA) has 2 of its 1 196
# frame pixels slightly opaque, and a rule that refused Vonage's sample would be wrong.
MIN_TRANSPARENT_BORDER = 0.9

LOGO_TYPES = ("white", "colored", "favicon")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Codes of the contract's invalidProperty.
EXCEEDS_SIZE = "exceeds_size"
TYPE = "type"
DIMENSIONS = "dimensions"
TRANSPARENT_BG = "transparent_bg"

# Pillow's answers to a file it cannot decode, truncated or corrupt.
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error)


def logo_problem(data: bytes, logo_type: str) -> str | None:
    """None when ``data`` is a good logo of ``logo_type`` (``favicon``, or ``white`` and
    ``colored``, which share the logo rules), else the ``invalidProperty`` code of the
    first rule it breaks."""
    if len(data) > MAX_LOGO_BYTES:
        return EXCEEDS_SIZE
    size = png_size(data)
    if size is None:
        return TYPE
    if not _dimensions_fit(*size, logo_type):
        return DIMENSIONS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # verify() reads every chunk through IEND and checks its CRC; load() decodes
            # every pixel. A truncated or corrupt file fails one or the other.
            Image.open(io.BytesIO(data), formats=["PNG"]).verify()
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            image.load()
    except (*_UNREADABLE, Image.DecompressionBombWarning, Image.DecompressionBombError):
        return TYPE
    if image.format != "PNG" or image.size != size:
        return TYPE
    if logo_type == "favicon":
        return None
    return None if _transparent_border(image) else TRANSPARENT_BG


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header (its first chunk, IHDR), or None when ``data``
    does not start like a PNG."""
    header = data[: len(PNG_SIGNATURE) + 16]
    if len(header) < len(PNG_SIGNATURE) + 16 or not header.startswith(PNG_SIGNATURE):
        return None
    length, kind, width, height = struct.unpack(">I4sII", header[len(PNG_SIGNATURE) :])
    if kind != b"IHDR" or length != 13:
        return None
    return width, height


def _dimensions_fit(width: int, height: int, logo_type: str) -> bool:
    if logo_type == "favicon":
        return width == height and MIN_FAVICON_SIDE <= width <= MAX_FAVICON_SIDE
    return MIN_LOGO_SIDE <= width <= MAX_LOGO_SIDE and MIN_LOGO_SIDE <= height <= MAX_LOGO_SIDE


def _transparent_border(image: Image.Image) -> bool:
    """Whether the image carries transparency (an alpha channel or a tRNS chunk) and at
    least :data:`MIN_TRANSPARENT_BORDER` of its outermost frame is fully transparent."""
    if "A" not in image.getbands() and "transparency" not in image.info:
        return False
    try:
        alpha = image.convert("RGBA").getchannel("A")
    except _UNREADABLE:  # a mode Pillow cannot convert (16-bit grey with tRNS, say)
        return False
    width, height = alpha.size
    # Each frame pixel once: the top and bottom rows whole, the side columns between them.
    edges = [(0, 0, width, 1)]
    if height > 1:
        edges.append((0, height - 1, width, height))
    if height > 2:
        edges.append((0, 1, 1, height - 1))
        if width > 1:
            edges.append((width - 1, 1, width, height - 1))
    transparent = total = 0
    for box in edges:
        histogram = alpha.crop(box).histogram()
        transparent += histogram[0]
        total += sum(histogram)
    return transparent >= MIN_TRANSPARENT_BORDER * total
