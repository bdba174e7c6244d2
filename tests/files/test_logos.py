"""The logo rules (contract §5 finalizeLogos): each invalidProperty, at its exact limits."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from meetd.domain import logos
from meetd.domain.logos import logo_problem, png_size
from tests.files import pngs


@pytest.mark.parametrize("logo_type", ["white", "colored"])
def test_a_transparent_png_logo_is_fine(logo_type: str) -> None:
    assert logo_problem(pngs.transparent_logo(), logo_type) is None


def test_size_is_checked_first_and_exactly_at_one_mebibyte() -> None:
    logo = pngs.transparent_logo(300, 300)
    # PNG decoders ignore bytes after IEND, so padding makes a valid PNG of any length.
    padded = logo + b"\0" * (logos.MAX_LOGO_BYTES - len(logo))
    assert len(padded) == 1_048_576
    assert logo_problem(padded, "white") is None
    assert logo_problem(padded + b"\0", "white") == "exceeds_size"
    assert logo_problem(b"not even an image" * 70_000, "favicon") == "exceeds_size"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a not a png",
        b"\x89PNG\r\n\x1a\n",
    ],
)
def test_not_a_png_is_type(data: bytes) -> None:
    assert logo_problem(data, "white") == "type"


def test_other_image_formats_are_type() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    for image_format in ("GIF", "WEBP", "BMP", "TIFF"):
        out = io.BytesIO()
        image.save(out, format=image_format)
        assert logo_problem(out.getvalue(), "white") == "type", image_format


def test_truncated_or_corrupt_png_is_type() -> None:
    logo = pngs.transparent_logo()
    assert logo_problem(logo[: len(logo) // 2], "white") == "type"
    favicon = pngs.opaque(32, 32)
    assert logo_problem(favicon[:-20], "favicon") == "type"  # no IEND
    assert logo_problem(favicon[:40], "favicon") == "type"
    # A flipped byte inside the compressed pixels: the chunk's CRC no longer matches.
    idat = logo.index(b"IDAT") + 10
    corrupt = logo[:idat] + bytes([logo[idat] ^ 0xFF]) + logo[idat + 1 :]
    assert logo_problem(corrupt, "white") == "type"


def test_a_png_signature_on_something_else_is_type() -> None:
    assert logo_problem(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "white") == "type"


@pytest.mark.parametrize(
    ("width", "height", "fine"),
    [(1, 1, True), (300, 300, True), (300, 1, True), (301, 300, False), (300, 301, False)],
)
def test_logo_dimensions(width: int, height: int, fine: bool) -> None:
    problem = logo_problem(pngs.transparent_logo(width, height), "colored")
    assert problem == (None if fine else "dimensions")


@pytest.mark.parametrize(
    ("width", "height", "fine"),
    [
        (16, 16, True),
        (32, 32, True),
        (24, 24, True),
        (15, 15, False),
        (33, 33, False),
        (16, 17, False),
        (32, 16, False),
    ],
)
def test_favicon_dimensions(width: int, height: int, fine: bool) -> None:
    problem = logo_problem(pngs.opaque(width, height), "favicon")
    assert problem == (None if fine else "dimensions")


def test_a_favicon_may_be_opaque_but_a_logo_may_not() -> None:
    favicon = pngs.opaque(32, 32)
    assert logo_problem(favicon, "favicon") is None
    assert logo_problem(favicon, "white") == "transparent_bg"


def _png_header_only(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + body
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_dimensions_come_from_the_header_before_any_pixel_is_decoded() -> None:
    # A header claiming 100 000 x 100 000 pixels (a decompression bomb's) and no pixels at
    # all: refused for its dimensions, without Pillow ever being asked to decode it.
    assert png_size(_png_header_only(100_000, 100_000)) == (100_000, 100_000)
    assert logo_problem(_png_header_only(100_000, 100_000), "white") == "dimensions"
    assert logo_problem(_png_header_only(300, 300), "white") == "type"  # no pixels


def test_a_logo_without_any_transparency_is_transparent_bg() -> None:
    assert logo_problem(pngs.opaque(100, 50), "white") == "transparent_bg"
    # An alpha channel that is opaque everywhere is no better.
    opaque_rgba = pngs.encode(Image.new("RGBA", (100, 50), (255, 255, 255, 255)))
    assert logo_problem(opaque_rgba, "colored") == "transparent_bg"


def test_the_border_must_be_at_least_ninety_percent_transparent() -> None:
    # 20 x 10: a frame of 2*20 + 2*8 = 56 pixels; 90 % of 56 is 50.4, so at most 5 opaque.
    assert logo_problem(pngs.framed_logo(20, 10, opaque_frame_pixels=5), "white") is None
    assert logo_problem(pngs.framed_logo(20, 10, opaque_frame_pixels=6), "white") == (
        "transparent_bg"
    )


def test_only_fully_transparent_border_pixels_count() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 1))  # nearly, not fully, transparent
    assert logo_problem(pngs.encode(image), "white") == "transparent_bg"


def test_a_vonage_like_sample_with_two_faint_border_pixels_passes() -> None:
    # Like Vonage's sample transparent logo: 300 x 300 RGBA, two border pixels faintly opaque.
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste((10, 10, 10, 255), (40, 40, 260, 260))
    image.putpixel((150, 0), (0, 0, 0, 126))
    image.putpixel((0, 150), (0, 0, 0, 40))
    assert logo_problem(pngs.encode(image), "white") is None


def test_transparency_from_a_trns_chunk_counts() -> None:
    # A palette image whose index 0 is transparent (tRNS), border drawn in index 0.
    paletted = Image.new("P", (40, 40), 0)
    paletted.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    paletted.paste(1, (5, 5, 35, 35))
    assert logo_problem(pngs.encode(paletted, transparency=0), "white") is None
    assert logo_problem(pngs.encode(paletted), "white") == "transparent_bg"
    # An RGB image with a colour key: white is transparent.
    keyed = Image.new("RGB", (40, 40), (255, 255, 255))
    keyed.paste((200, 0, 0), (5, 5, 35, 35))
    assert logo_problem(pngs.encode(keyed, transparency=(255, 255, 255)), "colored") is None


def test_grey_with_alpha_and_one_pixel_logos() -> None:
    grey = Image.new("LA", (30, 3), (0, 0))
    assert logo_problem(pngs.encode(grey), "white") is None
    assert logo_problem(pngs.encode(Image.new("RGBA", (1, 1), (0, 0, 0, 0))), "white") is None
    assert logo_problem(pngs.encode(Image.new("RGBA", (1, 1), (0, 0, 0, 255))), "white") == (
        "transparent_bg"
    )


def test_limits_are_the_documented_ones() -> None:
    assert logos.MAX_LOGO_BYTES == 1024 * 1024
    assert (logos.MIN_LOGO_SIDE, logos.MAX_LOGO_SIDE) == (1, 300)
    assert (logos.MIN_FAVICON_SIDE, logos.MAX_FAVICON_SIDE) == (16, 32)
    assert logos.MIN_TRANSPARENT_BORDER == 0.9
