"""Small real image files for attachment tests."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(
    width: int = 64, height: int = 48, *, fmt: str = "PNG", color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    """Return a solid-colour image encoded as PNG, JPEG or WEBP."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()


def png_bytes(width: int = 640, height: int = 360, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real PNG (by default one /video accepts as a frame image); the one PNG factory of the tests."""
    return image_bytes(width, height, fmt="PNG", color=color)


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    """Return a small JPEG."""
    return image_bytes(width, height, fmt="JPEG")
