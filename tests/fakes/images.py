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


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """Return a small PNG."""
    return image_bytes(width, height, fmt="PNG")


def jpeg_bytes(width: int = 64, height: int = 48) -> bytes:
    """Return a small JPEG."""
    return image_bytes(width, height, fmt="JPEG")
