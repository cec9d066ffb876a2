"""Reading and joining clips with PyAV (the FFmpeg bindings; its wheels carry FFmpeg): Extend's video work.

Blocking functions, CPU-bound: call them through `asyncio.to_thread` (the `*_async` helpers do). Discord-agnostic.
"""

from __future__ import annotations

import asyncio
import io
from fractions import Fraction
from typing import Any

import av
from PIL import Image

#: Frames the re-encoding join writes per second when the first clip does not say (Runware's clips are 25 fps).
DEFAULT_FPS = 25
#: How far before the end the last-frame search starts (then decodes forward); a whole clip if seeking fails.
TAIL_SECONDS = 2.0


class VideoError(Exception):
    """The bytes are not a clip PyAV can read (or write); `reason` says what went wrong, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open(data: bytes) -> Any:
    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError(f"not a readable clip: {exc}") from None


def _last_image(data: bytes) -> Image.Image:
    with _open(data) as container:
        if not container.streams.video:
            raise VideoError("the clip has no video stream")
        stream = container.streams.video[0]
        last = None
        end = None
        if stream.duration is not None and stream.time_base is not None:
            end = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            end = container.duration / av.time_base
        if end is not None and end > TAIL_SECONDS and stream.time_base is not None:
            try:
                container.seek(int((end - TAIL_SECONDS) / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError:
                container.seek(0, stream=stream)
        try:
            for frame in container.decode(stream):
                last = frame
        except av.FFmpegError as exc:
            if last is None:
                raise VideoError(f"the clip could not be decoded: {exc}") from None
        if last is None:
            raise VideoError("the clip has no frames")
        image: Image.Image = last.to_image()
        return image


def last_frame(data: bytes, width: int, height: int) -> bytes:
    """The clip's last frame as a PNG of width×height (scaled as the job's output size)."""
    image = _last_image(data).convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def duration_seconds(data: bytes) -> float:
    """How long the clip plays (the end of its last frame)."""
    with _open(data) as container:
        stream = container.streams.video[0]
        end = 0.0
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return end


def _same_codec(a: Any, b: Any) -> bool:
    ca, cb = a.codec_context, b.codec_context
    return bool(
        ca.name == cb.name
        and (ca.width, ca.height) == (cb.width, cb.height)
        and ca.format is not None
        and cb.format is not None
        and ca.format.name == cb.format.name
        and (ca.extradata or b"") == (cb.extradata or b"")
    )


def _remux(first: Any, second: Any) -> bytes:
    """Stream copy: the second clip's packets follow the first's, shifted by the first's end. No re-encoding."""
    out_buf = io.BytesIO()
    with av.open(out_buf, mode="w", format="mp4") as out:
        template = first.streams.video[0]
        ost = out.add_stream_from_template(template)
        offset = Fraction(0)
        for container in (first, second):
            stream = container.streams.video[0]
            tb = stream.time_base
            shift = round(offset / tb)
            end = Fraction(0)
            for packet in container.demux(stream):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.pts = (packet.pts if packet.pts is not None else packet.dts) + shift
                packet.dts += shift
                end = max(end, (packet.pts + (packet.duration or 0)) * tb)
                packet.stream = ost
                out.mux(packet)
            offset = max(offset, end)
    return out_buf.getvalue()


def _reencode(first: Any, second: Any) -> bytes:
    """Decode both clips and encode them as one H.264 clip at the first clip's size and frame rate."""
    a = first.streams.video[0]
    rate = a.average_rate or a.guessed_rate or DEFAULT_FPS
    width, height = a.codec_context.width, a.codec_context.height
    out_buf = io.BytesIO()
    with av.open(out_buf, mode="w", format="mp4") as out:
        ost = out.add_stream("libx264", rate=rate)
        ost.width, ost.height, ost.pix_fmt = width, height, "yuv420p"
        ost.options = {"preset": "veryfast", "crf": "18"}  # near-transparent, and quick on a small host
        index = 0
        for container in (first, second):
            for frame in container.decode(container.streams.video[0]):
                image = frame.reformat(width=width, height=height, format="yuv420p")
                image.pts = index
                image.time_base = Fraction(1) / Fraction(rate)
                index += 1
                for packet in ost.encode(image):
                    out.mux(packet)
        for packet in ost.encode(None):
            out.mux(packet)
    return out_buf.getvalue()


def join(first: bytes, second: bytes) -> tuple[bytes, bool]:
    """(the two clips as one MP4, remuxed): stream copy when the codecs match, else a re-encode."""
    with _open(first) as a, _open(second) as b:
        if not a.streams.video or not b.streams.video:
            raise VideoError("a clip has no video stream")
        same = _same_codec(a.streams.video[0], b.streams.video[0])
        try:
            return (_remux(a, b) if same else _reencode(a, b)), same
        except (av.FFmpegError, ValueError) as exc:
            raise VideoError(f"the clips could not be joined: {exc}") from None


async def last_frame_async(data: bytes, width: int, height: int) -> bytes:
    return await asyncio.to_thread(last_frame, data, width, height)


async def join_async(first: bytes, second: bytes) -> tuple[bytes, bool]:
    return await asyncio.to_thread(join, first, second)
