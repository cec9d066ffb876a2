"""The /limits report chart: a valid, deterministic PNG whose bars follow the spend per day."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.ui.chart import BAR, HEIGHT, WIDTH, nice_step, render_spend_chart

MARCH = [date(2025, 3, 1) + timedelta(days=i) for i in range(31)]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def bar_tops(image: Image.Image) -> list[tuple[int, int]]:
    """(first column, top row) of each run of columns holding bar pixels, left to right."""
    px = image.load()
    assert px is not None
    runs: list[tuple[int, int]] = []
    previous = False
    for x in range(image.width):
        tops = [y for y in range(image.height) if px[x, y] == BAR]
        if tops and not previous:
            runs.append((x, min(tops)))
        previous = bool(tops)
    return runs


def test_chart_is_a_png_of_the_documented_size() -> None:
    image = open_png(render_spend_chart([(d, 100_000 * (i % 5)) for i, d in enumerate(MARCH)], title="March"))
    assert image.size == (WIDTH, HEIGHT)


def png_chunks(data: bytes) -> list[str]:
    """The chunk types of a PNG, in order."""
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append(data[pos + 4 : pos + 8].decode("ascii"))
        pos += 12 + length
    return chunks


RENDER_IN_A_FRESH_PROCESS = """
import hashlib, sys
from datetime import date, timedelta
from bot.ui.chart import render_spend_chart
days = [date(2025, 3, 1) + timedelta(days=i) for i in range(7)]
png = render_spend_chart([(d, 37_000 * i) for i, d in enumerate(days)], title="Week")
sys.stdout.write(hashlib.sha256(png).hexdigest())
"""


def test_same_data_same_bytes_in_any_process_and_no_timestamp() -> None:
    daily = [(d, 37_000 * i) for i, d in enumerate(MARCH[:7])]
    data = render_spend_chart(daily, title="Week")
    assert set(png_chunks(data)) == {"IHDR", "IDAT", "IEND"}  # no tIME or text chunk that could vary
    here = hashlib.sha256(data).hexdigest()
    for seed in ("1", "2"):  # another interpreter, another hash seed: the same picture, byte for byte
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", RENDER_IN_A_FRESH_PROCESS], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == here


def ink_in(image: Image.Image, box: tuple[int, int, int, int]) -> bytes:
    """The pixels of a region, and a check that something is drawn there."""
    region = image.crop(box)
    assert region.getextrema() != ((255, 255), (255, 255), (255, 255)), f"nothing drawn in {box}"
    return region.tobytes()


#: The header row above the plot (bar value labels start lower): the title on the left, the total on the right.
TITLE_BOX = (0, 0, WIDTH // 2, 40)
TOTAL_BOX = (WIDTH // 2, 0, WIDTH, 40)


def test_the_total_and_title_are_drawn_in_the_header() -> None:
    today = open_png(render_spend_chart([(MARCH[0], 280_000)], title="Today"))
    other_title = open_png(render_spend_chart([(MARCH[0], 280_000)], title="Tomorrow"))
    other_total = open_png(render_spend_chart([(MARCH[0], 290_000)], title="Today"))
    assert ink_in(today, TITLE_BOX) != ink_in(other_title, TITLE_BOX)
    assert ink_in(today, TOTAL_BOX) == ink_in(other_title, TOTAL_BOX)  # same total, same pixels
    assert ink_in(today, TOTAL_BOX) != ink_in(other_total, TOTAL_BOX)
    assert ink_in(today, TITLE_BOX) == ink_in(other_total, TITLE_BOX)


def test_bars_are_proportional_to_spend_and_zero_days_have_none() -> None:
    daily = [(MARCH[0], 1_000_000), (MARCH[1], 0), (MARCH[2], 500_000), (MARCH[3], 250_000)]
    image = open_png(render_spend_chart(daily, title="Week"))
    tops = bar_tops(image)
    assert len(tops) == 3  # the zero day draws no bar
    baseline = image.height - 64  # MARGIN_BOTTOM: the x axis
    heights = [baseline - top for _, top in tops]
    assert heights[0] == pytest.approx(2 * heights[1], abs=2)
    assert heights[1] == pytest.approx(2 * heights[2], abs=2)
    assert [x for x, _ in tops] == sorted(x for x, _ in tops)


@pytest.mark.parametrize("daily", [[], [(MARCH[0], 0)], [(d, 0) for d in MARCH]])
def test_no_spend_still_draws_a_valid_chart_without_bars(daily: list[tuple[date, int]]) -> None:
    image = open_png(render_spend_chart(daily, title="Nothing yet"))
    assert bar_tops(image) == []


@given(st.integers(min_value=0, max_value=10**13))
def test_nice_step_is_round_and_covers_the_peak_in_five_steps(top: int) -> None:
    step = nice_step(top)
    assert step > 0
    assert step * 5 >= top
    digits = str(step).rstrip("0")
    assert digits in ("1", "2", "5")


def test_an_hourly_chart_has_a_bar_per_hour_and_is_not_the_daily_one() -> None:
    from datetime import UTC, datetime

    hours = [(datetime(2025, 3, 1, h, tzinfo=UTC), 10_000 * h) for h in range(24)]
    hourly = render_spend_chart(hours, title="Today")
    daily = render_spend_chart([(d, 10_000 * i) for i, d in enumerate(MARCH[:24])], title="Today")
    assert hourly != daily  # hour labels and the "Hour (UTC)" axis
    assert len(bar_tops(open_png(hourly))) == 23  # hour 0 spent nothing
