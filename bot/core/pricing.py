"""Prices that follow Runware: a reservation uses the larger of the configured price and the median of the last
20 costs Runware reported for that size, so a stale price table cannot let members spend past a limit.

A size is "<resolution>-<seconds>" as in [pricing]. A reported cost is per clip: a settled job's cost divided by
the number of its results. The rules are pure functions; `PriceBook` only adds the store read (one indexed query
of at most 20 rows per estimate, no cache, so every process sees the same figures).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.core.models import Micros
from bot.core.policy import estimate_micros

MEDIAN_OF = 20  # the last N reported costs of a size
DRIFT_PERCENT = 5  # a size is reported as drifting when its median is more than this far from the table

#: (resolution, duration, dry_run, how many) -> per-clip costs, newest first
CostSource = Callable[[str, int, bool, int], Awaitable[Sequence[Micros]]]


def median_micros(values: Sequence[Micros]) -> Micros | None:
    """The median in whole micro-dollars (the upper of the two middle values for an even count, so never low)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def size_key(resolution: str, duration: int) -> str:
    return f"{resolution}-{duration}"


def split_size(size: str) -> tuple[str, int] | None:
    resolution, _, seconds = size.partition("-")
    return (resolution, int(seconds)) if seconds.isdigit() else None


def clip_price(configured: Micros, reported: Micros | None) -> Micros:
    """What one clip reserves: the configured price, or the reported median when that is higher."""
    return configured if reported is None else max(configured, reported)


@dataclass(frozen=True, slots=True)
class PriceDrift:
    """A size whose reported median differs from the configured price by more than DRIFT_PERCENT."""

    size: str
    configured_micros: Micros
    reported_micros: Micros
    samples: int

    @property
    def percent(self) -> float:
        return 100.0 * (self.reported_micros - self.configured_micros) / self.configured_micros


def drifted(configured: Micros, reported: Micros, percent: int = DRIFT_PERCENT) -> bool:
    """More than `percent` % apart (exact integer arithmetic)."""
    return abs(reported - configured) * 100 > percent * configured


class PriceBook:
    """The configured table plus what Runware reported, read from the store when asked."""

    def __init__(self, prices: Mapping[str, Micros], costs: CostSource, *, dry_run: bool = False) -> None:
        self.prices = dict(prices)
        self._costs = costs
        self._dry_run = dry_run

    async def reported(self, resolution: str, duration: int) -> tuple[Micros | None, int]:
        """(median of the last MEDIAN_OF per-clip costs, how many there were) for one size."""
        costs = await self._costs(resolution, duration, self._dry_run, MEDIAN_OF)
        return median_micros(costs), len(costs)

    async def estimate(self, resolution: str, duration: int, variations: int) -> Micros:
        """The reservation for a job: InputError for a size with no configured price, as before."""
        configured = estimate_micros(self.prices, resolution, duration, 1)
        reported, _ = await self.reported(resolution, duration)
        return clip_price(configured, reported) * variations

    async def drifts(self) -> list[PriceDrift]:
        """Every configured size whose reported median is more than DRIFT_PERCENT off, in table order."""
        out: list[PriceDrift] = []
        for size, configured in self.prices.items():
            parsed = split_size(size)
            if parsed is None or configured <= 0:
                continue
            reported, samples = await self.reported(*parsed)
            if reported is not None and drifted(configured, reported):
                out.append(PriceDrift(size, configured, reported, samples))
        return out
