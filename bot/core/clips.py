"""Streamed clip downloads with time and byte caps, and a check that the bytes are a video."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

CHUNK = 64 * 1024


class ClipError(Exception):
    """The clip could not be fetched or is not a video."""


class ClipTooLarge(ClipError):
    """The clip is larger than the cap; the caller posts a link instead."""

    def __init__(self, size_hint: int | None, cap: int) -> None:
        super().__init__(f"clip larger than {cap} bytes")
        self.size_hint = size_hint
        self.cap = cap


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV start with an ISO-BMFF box (`ftyp`, sometimes `wide`/`moov`/`free`); WEBM with the EBML magic."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"wide", b"free", b"mdat"):
        return True
    return head[:4] == b"\x1a\x45\xdf\xa3"


async def fetch_clip(http: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout: float) -> bytes:
    """Download a clip into memory, refusing more than `max_bytes` (ClipTooLarge) or anything not a video."""
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout), http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise ClipError(f"clip download answered HTTP {resp.status}")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise ClipTooLarge(resp.content_length, max_bytes)
            async for chunk in resp.content.iter_chunked(CHUNK):
                buf += chunk
                if len(buf) > max_bytes:
                    raise ClipTooLarge(None, max_bytes)
    except TimeoutError:
        raise ClipError("clip download timed out") from None
    except aiohttp.ClientError as exc:
        raise ClipError(f"clip download failed: {type(exc).__name__}") from None
    if not looks_like_video(bytes(buf[:16])):
        raise ClipError("the downloaded file is not a video")
    return bytes(buf)


async def save_clip(http: aiohttp.ClientSession, url: str, dest: Path, *, max_bytes: int, timeout: float) -> int:
    """Stream a clip to `dest` (written to a temporary name, then renamed); return its size."""
    tmp = dest.with_name(dest.name + ".part")
    size = 0
    try:
        async with asyncio.timeout(timeout), http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise ClipError(f"clip download answered HTTP {resp.status}")
            head = b""
            with tmp.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    if len(head) < 16:
                        head += chunk[:16]
                    size += len(chunk)
                    if size > max_bytes:
                        raise ClipTooLarge(None, max_bytes)
                    fh.write(chunk)
        if not looks_like_video(head):
            raise ClipError("the downloaded file is not a video")
        tmp.replace(dest)
    except TimeoutError:
        raise ClipError("clip download timed out") from None
    except aiohttp.ClientError as exc:
        raise ClipError(f"clip download failed: {type(exc).__name__}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return size
