"""The spend bar chart attached to /limits report: a PNG drawn with Pillow, the same bytes for the same data.

Bars are UTC days (a `date` per bar: the week and month reports) or UTC hours (a `datetime` per bar: today's).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from PIL import Image, ImageDraw, ImageFont

from bot.core.models import MICROS_PER_USD, Micros, format_usd

WIDTH, HEIGHT = 900, 420
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 24, 56, 64
BACKGROUND = (255, 255, 255)
INK = (32, 34, 37)
GRID = (225, 227, 232)
BAR = (88, 101, 242)
EMPTY_NOTE = (120, 124, 130)
Y_STEPS = 5
VALUE_LABELS_UP_TO = 14  # days; beyond that the amounts would overlap

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    """Pillow's bundled font (no system fonts, so the picture is the same on every machine)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_step(top: Micros, steps: int = Y_STEPS) -> Micros:
    """A round grid step (1, 2 or 5 times a power of ten, in micro-dollars) so `steps` of them cover `top`."""
    if top <= 0:
        return MICROS_PER_USD // 100  # one cent
    raw = Decimal(top) / steps
    power = Decimal(10) ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if power * factor >= raw:
            return max(1, int(power * factor))
    return max(1, int(power * 10))  # pragma: no cover - the loop always returns


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    return right - left


def _bar_label(when: date, first: bool) -> str:
    if isinstance(when, datetime):
        return when.strftime("%H")
    return when.strftime("%d %b") if first or when.day == 1 else when.strftime("%d")


def render_spend_chart(daily: Sequence[tuple[date, Micros]], *, title: str) -> bytes:
    """Bars of spend per UTC day or hour, a USD axis with round ticks, bar labels and the period's total; PNG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, font, small = _font(18), _font(13), _font(11)
    total = sum(amount for _, amount in daily)
    draw.text((MARGIN_LEFT, 14), title, fill=INK, font=title_font)
    total_text = f"Total {format_usd(total)}"
    total_x = WIDTH - MARGIN_RIGHT - _text_width(draw, total_text, title_font)
    draw.text((total_x, 14), total_text, fill=INK, font=title_font)

    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    peak = max((amount for _, amount in daily), default=0)
    step = nice_step(peak)
    y_max = step * max(1, -(-peak // step))  # the peak rounded up to a whole step
    plot_h = bottom - top

    def y_of(amount: Micros) -> float:
        return bottom - plot_h * amount / y_max

    for i in range(int(y_max // step) + 1):
        value = step * i
        y = y_of(value)
        draw.line([(left, y), (right, y)], fill=GRID, width=1)
        label = format_usd(value)
        draw.text((left - 8 - _text_width(draw, label, font), y - 8), label, fill=INK, font=font)
    draw.line([(left, top), (left, bottom)], fill=INK, width=1)
    draw.line([(left, bottom), (right, bottom)], fill=INK, width=1)
    draw.text((8, top - 22), "USD", fill=INK, font=font)
    hourly = bool(daily) and isinstance(daily[0][0], datetime)
    axis = "Hour (UTC)" if hourly else "Day (UTC)"
    draw.text(((left + right - _text_width(draw, axis, font)) / 2, HEIGHT - 22), axis, fill=INK, font=font)

    n = len(daily)
    slot = (right - left) / max(n, 1)
    bar_w = max(2.0, slot * 0.7)
    every = max(1, -(-n // 16))  # at most 16 day labels
    for i, (day, amount) in enumerate(daily):
        x0 = left + slot * i + (slot - bar_w) / 2
        if amount > 0:
            draw.rectangle([x0, y_of(amount), x0 + bar_w, bottom - 1], fill=BAR)
            if n <= VALUE_LABELS_UP_TO:
                shown = format_usd(amount)
                draw.text(
                    (x0 + bar_w / 2 - _text_width(draw, shown, small) / 2, y_of(amount) - 16),
                    shown,
                    fill=INK,
                    font=small,
                )
        if i % every == 0 or i == n - 1:
            label = _bar_label(day, i == 0)
            draw.text((x0 + bar_w / 2 - _text_width(draw, label, small) / 2, bottom + 6), label, fill=INK, font=small)
    if total == 0:
        note = "No spend in this period"
        note_x = (left + right - _text_width(draw, note, font)) / 2
        draw.text((note_x, (top + bottom) / 2), note, fill=EMPTY_NOTE, font=font)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


__all__ = ["nice_step", "render_spend_chart"]
