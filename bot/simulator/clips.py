"""Small real MP4 clips for the simulator whose colour changes over time, so the first and last frames differ.

Each clip is keyed (taskUUID and its index in the task): the same key always gives the same bytes, different keys
different colours. Made with PyAV (H.264, 25 fps) and cached, so a clip is encoded once per process.
"""

from __future__ import annotations

import colorsys
import functools
import io
import zlib
from fractions import Fraction

import av

from bot.simulator.faults import SimTask

FPS = 25
WIDTH, HEIGHT = 64, 36


def colour_at(key: str, t: float, index: int = 0) -> tuple[int, int, int]:
    """The clip's colour at fraction t (0 = first frame, 1 = last): the hue turns a third of the wheel.

    Clips of one task (index 0, 1, ...) start 0.29 of the wheel apart, so no two of them end on the same colour.
    """
    start = (zlib.crc32(key.encode()) % 360) / 360.0 + 0.29 * index
    r, g, b = colorsys.hsv_to_rgb((start + t / 3.0) % 1.0, 0.9, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


@functools.lru_cache(maxsize=64)
def make_clip(key: str, seconds: int, index: int = 0) -> bytes:
    """An H.264 MP4 of `seconds` at 25 fps, 64×36, one solid colour per frame moving from start to end."""
    frames = max(1, seconds * FPS)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(frames):
            rgb = colour_at(key, i / max(1, frames - 1), index)
            plane = bytes(rgb) * (WIDTH * HEIGHT)
            frame = av.VideoFrame(WIDTH, HEIGHT, "rgb24")
            frame.planes[0].update(plane)
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def clip_for(sim: SimTask, video_uuid: str, default: bytes) -> bytes:
    """The clip a videoURL serves when the simulator makes varied clips: keyed by taskUUID, and its index there."""
    gen = next((g for g in sim.generations if g.video_uuid == video_uuid), None)
    seconds = int(sim.task.duration or 6)
    return make_clip(sim.task_uuid, seconds, gen.index) if gen is not None else default
