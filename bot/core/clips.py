"""Streamed clip downloads with time and byte caps, from allowed hosts only, and a check that the bytes are a video."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ClipError(Exception):
    """The clip could not be fetched or is not a video."""


class ClipTooLarge(ClipError):
    """The clip is larger than the cap; the caller posts a link instead."""

    def __init__(self, size_hint: int | None, cap: int) -> None:
        super().__init__(f"clip larger than {cap} bytes")
        self.size_hint = size_hint
        self.cap = cap


class ClipRefused(ClipError):
    """The clip's URL (or a redirect) points somewhere clips may not come from: never fetched, never shown."""


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


class ClipHosts:
    """Where clips may come from: the configured hosts (on their scheme's default port; `*.example.com` takes the
    subdomains) and runware.api_base's own host and port. Loopback and private addresses only when runware.api_base
    itself is one (the simulator, a test, a local proxy)."""

    def __init__(self, hosts: Iterable[str], api_base: str) -> None:
        self._exact = {h for h in hosts if not h.startswith("*.")}
        self._suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))  # ".example.com"
        base = URL(api_base)
        self._base_origin = (base.host or "").lower(), base.port
        self._private_ok: bool | None = None

    def allows(self, url: str) -> bool:
        """Scheme, host and port are acceptable (addresses are checked when fetching)."""
        try:
            parsed = URL(url)
        except ValueError:
            return False
        if parsed.scheme not in _DEFAULT_PORTS or not parsed.host or parsed.user or parsed.password:
            return False
        host = parsed.host.lower().rstrip(".")
        if (host, parsed.port) == self._base_origin:
            return True
        if parsed.port != _DEFAULT_PORTS[parsed.scheme]:
            return False
        return host in self._exact or host.endswith(self._suffixes)

    async def _addresses(self, host: str, port: int) -> set[str]:
        try:
            return {str(ipaddress.ip_address(host))}
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), 10)
        except (OSError, TimeoutError):
            return set()
        return {str(info[4][0]) for info in infos}

    async def private_ok(self) -> bool:
        if self._private_ok is None:
            host, port = self._base_origin
            found = await self._addresses(host, port or 443) if host else set()
            self._private_ok = bool(found) and any(_is_private(a) for a in found)
        return self._private_ok

    async def check(self, url: str) -> None:
        """Raise ClipRefused unless `url` may be fetched: an allowed host that is not private (unless api_base is)."""
        if not self.allows(url):
            raise ClipRefused(f"clip URL host is not allowed: {URL(url).host or '?'}")
        parsed = URL(url)
        assert parsed.host is not None and parsed.port is not None
        addresses = await self._addresses(parsed.host, parsed.port)
        if not addresses:
            raise ClipError(f"clip host {parsed.host} does not resolve")
        if any(_is_private(a) for a in addresses) and not await self.private_ok():
            raise ClipRefused(f"clip host {parsed.host} is a loopback or private address")


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV start with an ISO-BMFF box (`ftyp`, sometimes `wide`/`moov`/`free`); WEBM with the EBML magic."""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"wide", b"free", b"mdat"):
        return True
    return head[:4] == b"\x1a\x45\xdf\xa3"


@asynccontextmanager
async def _open(
    http: aiohttp.ClientSession, url: str, hosts: ClipHosts | None, timeout: float
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET `url`, following at most MAX_REDIRECTS redirects, each checked against `hosts` before it is fetched."""
    per_request = aiohttp.ClientTimeout(total=timeout)
    for _ in range(MAX_REDIRECTS + 1):
        if hosts is not None:
            await hosts.check(url)
        async with http.get(url, timeout=per_request, allow_redirects=hosts is None) as resp:
            location = resp.headers.get("Location")
            if hosts is not None and resp.status in (301, 302, 303, 307, 308) and location:
                url = str(resp.url.join(URL(location)))
                continue
            yield resp
            return
    raise ClipError(f"clip download redirected more than {MAX_REDIRECTS} times")


async def fetch_clip(
    http: aiohttp.ClientSession, url: str, *, max_bytes: int, timeout: float, hosts: ClipHosts | None = None
) -> bytes:
    """Download a clip into memory, refusing more than `max_bytes` (ClipTooLarge), anything not a video, and (with
    `hosts`) URLs and redirects outside the allowed hosts (ClipRefused). `timeout` bounds the whole download."""
    buf = bytearray()
    try:
        async with asyncio.timeout(timeout), _open(http, url, hosts, timeout) as resp:
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


async def save_clip(
    http: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    hosts: ClipHosts | None = None,
) -> int:
    """Stream a clip to `dest` (written to a temporary name, then renamed); return its size."""
    tmp = dest.with_name(dest.name + ".part")
    size = 0
    try:
        async with asyncio.timeout(timeout), _open(http, url, hosts, timeout) as resp:
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
