"""Extend's video work at Runware's sizes: the last frame of a clip and two clips joined. Prints figures only.

    python bench/extend_video.py [--seconds 6] [--width 1366 --height 768]

Makes two H.264 clips with moving content (a gradient that scrolls, so the encoder has real work), then times
bot.core.video.last_frame (seek to the tail, decode, scale, PNG), join by stream copy (codecs match) and join by
re-encoding (the second clip in another codec). These run in a thread in the bot (asyncio.to_thread).
"""

from __future__ import annotations

import argparse
import io
import time
from fractions import Fraction

import av
from PIL import Image, ImageChops

from bot.core.video import duration_seconds, join, last_frame


def clip(width: int, height: int, seconds: int, codec: str, shift: int) -> bytes:
    buf = io.BytesIO()
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    base = Image.merge("RGB", (horizontal, vertical, ImageChops.invert(horizontal)))
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * 25):
            image = ImageChops.offset(base, i * 4 + shift, i * 2)
            frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    print(f"{label:48} {time.perf_counter() - start:7.3f} s")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--width", type=int, default=1366)
    ap.add_argument("--height", type=int, default=768)
    a = ap.parse_args()
    first = clip(a.width, a.height, a.seconds, "libx264", 0)
    second = clip(a.width, a.height, a.seconds, "libx264", 97)
    other = clip(a.width, a.height, a.seconds, "mpeg4", 31)
    sizes = f"{len(first) / 1e6:.1f} MB and {len(second) / 1e6:.1f} MB"
    print(f"clips: {a.width}×{a.height}, {a.seconds} s at 25 fps; {sizes}")
    png = timed("last frame (seek, decode, scale, PNG)", last_frame, first, a.width, a.height)
    print(f"{'  PNG size':48} {len(png) / 1e6:7.2f} MB")
    joined, remuxed = timed("join, same codec (stream copy)", join, first, second)
    print(f"{'  remuxed':48} {remuxed!s:>7}; plays {duration_seconds(joined):.2f} s, {len(joined) / 1e6:.1f} MB")
    joined, remuxed = timed("join, other codec (re-encode with libx264)", join, first, other)
    print(f"{'  remuxed':48} {remuxed!s:>7}; plays {duration_seconds(joined):.2f} s, {len(joined) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
