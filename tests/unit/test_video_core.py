"""bot/core/video.py: a clip's last frame, and two clips joined (stream copy when codecs match, else re-encoded)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import pytest
from PIL import Image

from bot.core.video import VideoError, duration_seconds, join, last_frame
from bot.simulator.clips import colour_at, make_clip


def mpeg4_clip(seconds: int, size: tuple[int, int] = (96, 54)) -> bytes:
    """A clip in another codec and size than the simulator's (MPEG-4 part 2), so joining must re-encode."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(seconds * 25):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (i % 255, 80, 160))).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def test_last_frame_is_the_clips_end_scaled_to_the_size_asked() -> None:
    png = last_frame(make_clip("k", 6), 1366, 768)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1366, 768)
    want, first = colour_at("k", 1.0), colour_at("k", 0.0)
    got = image.getpixel((683, 384))
    assert isinstance(got, tuple)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 4
    assert max(abs(a - b) for a, b in zip(got, first, strict=True)) > 40


def test_clips_with_the_same_codec_are_joined_by_stream_copy_and_play_for_both_lengths() -> None:
    joined, remuxed = join(make_clip("a", 6), make_clip("b", 10))
    assert remuxed
    assert abs(duration_seconds(joined) - 16.0) < 0.05


def test_clips_with_different_codecs_are_re_encoded_into_one() -> None:
    joined, remuxed = join(make_clip("a", 6), mpeg4_clip(2))
    assert not remuxed
    with av.open(io.BytesIO(joined)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 36)
        assert sum(1 for _ in c.decode(stream)) == 8 * 25


def test_bytes_that_are_not_a_clip_are_refused_with_a_reason() -> None:
    with pytest.raises(VideoError):
        last_frame(b"not a video at all", 10, 10)
