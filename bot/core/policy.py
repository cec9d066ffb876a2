"""Pure rules: sizes and durations, prompts, periods, prices and which limits apply. No I/O, no clock reads."""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.errors import InputError
from bot.core.models import Micros, Payer, Period, Scope, usd_to_micros

RESOLUTION_SIZES: dict[str, tuple[int, int]] = {"768p": (1366, 768), "1080p": (1920, 1080)}
ALLOWED_DURATIONS: dict[str, tuple[int, ...]] = {"768p": (6, 10), "1080p": (6,)}
RESOLUTIONS: tuple[str, ...] = tuple(RESOLUTION_SIZES)
DURATIONS: tuple[int, ...] = (6, 10)
PROMPT_MIN, PROMPT_MAX = 2, 2000
MAX_VARIATIONS = 20


def check_resolution_duration(resolution: str, duration: int) -> tuple[int, int]:
    """Return (width, height) or raise InputError listing the allowed pairs."""
    if resolution not in RESOLUTION_SIZES:
        raise InputError("resolution_not_offered", resolution=resolution)
    if duration not in ALLOWED_DURATIONS[resolution]:
        raise InputError("duration_not_allowed", resolution=resolution, duration=duration)
    return RESOLUTION_SIZES[resolution]


#: Characters Unicode does not class as space or format but that render as nothing (Hangul fillers, Braille blank).
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(char: str) -> bool:
    """False for spaces, separators, control and format characters (zero-width ones) and the blank look-alikes."""
    return char not in _BLANK_LOOKALIKES and unicodedata.category(char)[0] not in ("Z", "C") and not char.isspace()


def clean_prompt(prompt: str) -> str:
    """Trim and check a prompt's length (2–2000 characters), or raise InputError saying what to change.

    A prompt with no visible character (only zero-width spaces, U+3164, U+2800 ...) is empty; control characters
    (other than line breaks and tabs) are refused.
    """
    text = prompt.strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text):
        raise InputError("prompt_control_characters")
    if not any(_visible(c) for c in text):
        raise InputError("prompt_empty")
    if len(text) < PROMPT_MIN:
        raise InputError("prompt_too_short", length=len(text), minimum=PROMPT_MIN)
    if len(text) > PROMPT_MAX:
        raise InputError("prompt_too_long", length=len(text), maximum=PROMPT_MAX)
    return text


def check_variations(variations: int, cap: int) -> int:
    cap = max(1, min(cap, MAX_VARIATIONS))
    if variations < 1 or variations > cap:
        raise InputError("variations", cap=cap, asked=variations)
    return variations


# -- periods ---------------------------------------------------------------------------------------------------------


def period_window(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar window [start, end) holding `now`: day, ISO week (Monday), or month."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day, day + timedelta(days=1)
    if period is Period.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + timedelta(days=days)


# -- prices ----------------------------------------------------------------------------------------------------------


#: Most one clip may cost, in micro-dollars: a clip costs well under $1, so anything above is no real price.
MAX_CLIP_COST_MICROS = 100_000_000


def cost_is_sane(cost_micros: Micros, clips: int) -> bool:
    """A cost recorded for `clips` clips is a real price: not negative, not above the cap per clip. Costs are checked
    at the edge (bot/runware/results.py); this guards rows written before that."""
    return 0 <= cost_micros <= MAX_CLIP_COST_MICROS * max(1, clips)


def price_table_micros(pricing: Mapping[str, float]) -> dict[str, Micros]:
    return {key: usd_to_micros(value) for key, value in pricing.items()}


def estimate_micros(prices: Mapping[str, Micros], resolution: str, duration: int, variations: int) -> Micros:
    """Reservation estimate: price per clip for this size and length, times the clips asked for."""
    key = f"{resolution}-{duration}"
    if key not in prices:
        raise InputError("no_price", resolution=resolution, duration=duration)
    return prices[key] * variations


# -- limits ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """One spend limit. `target_id` is a member, role, channel or guild id according to `scope`."""

    scope: Scope
    target_id: int
    period: Period
    amount_micros: Micros
    is_default: bool = False  # from the config file, not set by a moderator


def applicable_limits(
    *,
    payer: Payer,
    guild_id: int,
    user_id: int,
    role_ids: Iterable[int],
    channel_id: int,
    configured: Sequence[Limit],
    member_defaults: Mapping[Period, Micros],
    server_defaults: Mapping[Period, Micros],
) -> list[Limit]:
    """Every limit a job must fit, per SPEC §5.

    Per period: a member limit beats role limits; among the member's roles the most generous applies; with
    neither, the config default for members. The @everyone role (id = guild id) is how a server overrides the
    member default. Channel and server limits apply on top. Pool jobs skip the member tier; operator jobs skip all.
    """
    if payer is Payer.OPERATOR:
        return []
    roles = set(role_ids) | {guild_id}
    out: list[Limit] = []
    for period in Period:
        if payer is Payer.MEMBER:
            member = [
                lim
                for lim in configured
                if lim.scope is Scope.MEMBER and lim.target_id == user_id and lim.period is period
            ]
            role = [
                lim for lim in configured if lim.scope is Scope.ROLE and lim.target_id in roles and lim.period is period
            ]
            if member:
                out.append(member[0])
            elif role:
                out.append(max(role, key=lambda lim: lim.amount_micros))
            elif period in member_defaults:
                out.append(Limit(Scope.MEMBER, user_id, period, member_defaults[period], is_default=True))
        out += [
            lim
            for lim in configured
            if lim.scope is Scope.CHANNEL and lim.target_id == channel_id and lim.period is period
        ]
        server = [
            lim
            for lim in configured
            if lim.scope is Scope.SERVER and lim.target_id == guild_id and lim.period is period
        ]
        if server:
            out.append(server[0])
        elif period in server_defaults:
            out.append(Limit(Scope.SERVER, guild_id, period, server_defaults[period], is_default=True))
    return out


def left_micros(limit: Limit, spent_micros: Micros) -> Micros:
    return max(0, limit.amount_micros - spent_micros)


def fits(limit: Limit, spent_micros: Micros, estimate: Micros) -> bool:
    """Whether a job of `estimate` still fits under `limit`. A $0 limit blocks every job, even a $0-priced one."""
    return limit.amount_micros > 0 and spent_micros + estimate <= limit.amount_micros
