"""Frame images: size cap, type sniffed from the bytes, a full decode, and dimension rules (SPEC §6, §8).

Every refusal is an InputError carrying the file's name and the facts (bot/ui says what to change). The decode is
CPU-bound, so the async entry point runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot.core.errors import InputError
from bot.core.models import ImageInput
from bot.runware.models import sniff_image
from bot.settings import ImageSettings

#: mime -> the Pillow format that decodes it
PIL_FORMATS: dict[str, str] = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}

# Formats members often try, recognised only to name them in the refusal (bot/ui words the kind).
_OTHER_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"%PDF", "pdf"),
    (b"\x00\x00\x01\x00", "icon"),
)


def other_kind(data: bytes) -> str | None:
    """What a file that is no PNG, JPEG or WEBP looks like ('gif', 'heic', ...), or None."""
    for magic, kind in _OTHER_KINDS:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"avif"):
        return "heic"
    return None


def too_large(filename: str, size: int, cap: int) -> InputError:
    """The refusal of a file over the size cap (also raised from its declared size, before any download)."""
    return InputError("image_too_large", filename=filename, size=size, cap=cap)


def check_image(filename: str, data: bytes, cfg: ImageSettings) -> ImageInput:
    """Check one attachment and describe it, or raise InputError naming the file (blocking: decodes)."""
    name = filename
    if len(data) > cfg.max_bytes:
        raise too_large(filename, len(data), cfg.max_bytes)
    if not data:
        raise InputError("image_empty", filename=name)
    mime = sniff_image(data)  # the same check Runware makes: content, not the name
    if mime is None:
        raise InputError("image_not_image", filename=name, kind=other_kind(data))
    kind = PIL_FORMATS[mime]
    unreadable = InputError("image_unreadable", filename=name, kind=kind)
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
        raise InputError("image_too_many_pixels", filename=name) from None
    except (OSError, SyntaxError, ValueError, EOFError):  # UnidentifiedImageError is an OSError
        raise unreadable from None
    return ImageInput(filename=filename, data=data, mime=mime, width=width, height=height)


def _check_dimensions(name: str, width: int, height: int, cfg: ImageSettings) -> None:
    facts = {"filename": name, "width": width, "height": height}
    if min(width, height) < cfg.min_side:
        raise InputError("image_too_small", **facts, min_side=cfg.min_side)
    if max(width, height) > cfg.max_side:
        raise InputError("image_too_big", **facts, max_side=cfg.max_side)
    ratio = max(width, height) / min(width, height)
    if ratio > cfg.max_aspect:
        raise InputError("image_aspect", **facts, ratio=ratio, max_aspect=cfg.max_aspect)


async def read_image(filename: str, data: bytes, cfg: ImageSettings) -> ImageInput:
    """Check one attachment off the event loop; see check_image."""
    return await asyncio.to_thread(check_image, filename, data, cfg)
