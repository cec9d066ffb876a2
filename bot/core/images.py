"""Frame images: size cap, type sniffed from the bytes, a full decode, and dimension rules (SPEC §6, §8).

Every refusal is an InputError that names the file and says what to change. The decode is CPU-bound, so the
async entry point runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math

from PIL import Image

from bot.core.errors import InputError
from bot.core.models import ImageInput
from bot.settings import ImageSettings

MIB = 1024 * 1024

#: mime -> the Pillow format that decodes it
PIL_FORMATS: dict[str, str] = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}

# Formats members often try, recognised only to name them in the refusal.
_OTHER_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF"),
    (b"GIF89a", "a GIF"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF"),
    (b"\x00\x00\x01\x00", "an icon file"),
)


def sniff_mime(data: bytes) -> str | None:
    """The image type the bytes say they are (PNG, JPEG or WEBP), whatever the file is called."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _describe(data: bytes) -> str:
    for magic, kind in _OTHER_KINDS:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"avif"):
        return "a HEIC/AVIF image"
    return "not an image the bot can read"


def _mib(n: int) -> str:
    """Whole MiB when exact, else one decimal rounded up (so 10 MiB + 1 byte never reads as 10.0 MiB)."""
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    return f"{math.ceil(n * 10 / MIB) / 10:.1f} MiB"


def _name(filename: str) -> str:
    """The file name as quoted back to the member: one line, not absurdly long."""
    clean = "".join(ch for ch in filename if ch.isprintable()).strip().replace('"', "'")
    if not clean:
        return "The image"
    return f'"{clean}"' if len(clean) <= 80 else f'"{clean[:77]}..."'


def too_large(filename: str, size: int, cap: int) -> InputError:
    """The refusal of a file over the size cap (also raised from its declared size, before any download)."""
    return InputError(
        f"{_name(filename)} is {_mib(size)}; images can be at most {_mib(cap)}. Attach a smaller PNG, JPEG or WEBP."
    )


def check_image(filename: str, data: bytes, cfg: ImageSettings) -> ImageInput:
    """Check one attachment and describe it, or raise InputError naming the file (blocking: decodes)."""
    name = _name(filename)
    if len(data) > cfg.max_bytes:
        raise too_large(filename, len(data), cfg.max_bytes)
    if not data:
        raise InputError(f"{name} is empty. Attach a PNG, JPEG or WEBP image.")
    mime = sniff_mime(data)
    if mime is None:
        raise InputError(f"{name} is {_describe(data)}. Attach a PNG, JPEG or WEBP image.")
    kind = PIL_FORMATS[mime]
    unreadable = InputError(f"{name} looks like a {kind} but could not be read (damaged or cut short). Save it again.")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size  # from the header: checked before any pixel is decoded
            _check_dimensions(name, width, height, cfg)
            img.verify()
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            img.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} has too many pixels to open safely. Use a smaller image.") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # UnidentifiedImageError is an OSError
        raise unreadable from None
    return ImageInput(filename=filename, data=data, mime=mime, width=width, height=height)


def _check_dimensions(name: str, width: int, height: int, cfg: ImageSettings) -> None:
    size = f"{width}×{height} pixels"
    if min(width, height) < cfg.min_side:
        raise InputError(f"{name} is {size}; each side must be at least {cfg.min_side} pixels. Use a larger image.")
    if max(width, height) > cfg.max_side:
        raise InputError(f"{name} is {size}; each side must be at most {cfg.max_side} pixels. Scale it down.")
    ratio = max(width, height) / min(width, height)
    if ratio > cfg.max_aspect:
        limit = f"{cfg.max_aspect:g}"
        raise InputError(
            f"{name} is {size}, {ratio:.2f} times as {'wide as it is tall' if width > height else 'tall as it is wide'}"
            f"; the aspect ratio must be between 1:{limit} and {limit}:1. Crop it closer to the clip's shape."
        )


async def read_image(filename: str, data: bytes, cfg: ImageSettings) -> ImageInput:
    """Check one attachment off the event loop; see check_image."""
    return await asyncio.to_thread(check_image, filename, data, cfg)


def to_data_uri(img: ImageInput) -> str:
    """The image as a `data:` URI, which Runware accepts wherever it takes an image."""
    return f"data:{img.mime};base64,{base64.b64encode(img.data).decode('ascii')}"
