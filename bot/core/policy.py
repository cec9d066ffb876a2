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
FPS = 25


def allowed_pairs_text() -> str:
    """'768p: 6 or 10 s; 1080p: 6 s', in the command's own terms."""
    parts = []
    for res, durs in ALLOWED_DURATIONS.items():
        parts.append(f"{res}: {' or '.join(str(d) for d in durs)} s")
    return "; ".join(parts)


def check_resolution_duration(resolution: str, duration: int) -> tuple[int, int]:
    """Return (width, height) or raise InputError listing the allowed pairs."""
    if resolution not in RESOLUTION_SIZES:
        raise InputError(f"Resolution {resolution!r} is not offered. Choose one of: {allowed_pairs_text()}.")
    if duration not in ALLOWED_DURATIONS[resolution]:
        raise InputError(f"{resolution} clips can't be {duration} s long. Allowed: {allowed_pairs_text()}.")
    return RESOLUTION_SIZES[resolution]


def resolution_of(width: int, height: int) -> str | None:
    for name, size in RESOLUTION_SIZES.items():
        if size == (width, height):
            return name
    return None


#: Characters Unicode does not class as space or format but that render as nothing (Hangul fillers, Braille blank).
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(char: str) -> bool:
    """False for spaces, separators, control and format characters (zero-width ones) and the blank look-alikes."""
    return char not in _BLANK_LOOKALIKES and unicodedata.category(char)[0] not in ("Z", "C") and not char.isspace()


def clean_prompt(prompt: str) -> str:
    """Trim and check a prompt's length (2–2000 characters), or raise InputError saying what to change.

    A prompt with no visible character (only zero-width spaces, U+3164, U+2800 ...) is empty.
    """
    text = prompt.strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text):
        raise InputError("The prompt holds control characters. Remove them and send it again.")
    if not any(_visible(c) for c in text):
        raise InputError("The prompt is empty. Describe the clip you want, in at least 2 characters.")
    if len(text) < PROMPT_MIN:
        raise InputError(f"The prompt is too short ({len(text)} character). Use at least {PROMPT_MIN} characters.")
    if len(text) > PROMPT_MAX:
        raise InputError(
            f"The prompt is too long ({len(text)} characters). Shorten it to {PROMPT_MAX} characters or fewer."
        )
    return text


def check_variations(variations: int, cap: int) -> int:
    cap = max(1, min(cap, MAX_VARIATIONS))
    if variations < 1 or variations > cap:
        raise InputError(f"Variations must be between 1 and {cap} in this server (you asked for {variations}).")
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
        raise InputError(
            f"No price is configured for {resolution} at {duration} s, so it can't be requested here. "
            "Choose another resolution or length."
        )
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

    def label(self) -> str:
        who = {
            Scope.MEMBER: "your",
            Scope.ROLE: "your role's",
            Scope.CHANNEL: "this channel's",
            Scope.SERVER: "the server's",
        }[self.scope]
        kind = "default " if self.is_default and self.scope is not Scope.SERVER else ""
        return f"{who} {kind}{self.period.value}ly limit".replace("dayly", "daily")


def default_limits(
    guild_id: int, user_id: int, member_defaults: Mapping[Period, Micros], server_defaults: Mapping[Period, Micros]
) -> list[Limit]:
    out = [Limit(Scope.MEMBER, user_id, p, a, is_default=True) for p, a in member_defaults.items()]
    out += [Limit(Scope.SERVER, guild_id, p, a, is_default=True) for p, a in server_defaults.items()]
    return out


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
