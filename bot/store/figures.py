"""SpendFigures: what the price book and the moderators' reports read beside the ledger's own report.

Portable SQL only (SQLite and PostgreSQL alike): no date functions, no SQLite-only aggregates; medians and time
buckets are computed in Python over the few rows returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.core.models import JobState, Micros
from bot.store.driver import Database, from_db_time, to_db_time
from bot.store.ledger import SpendLine

#: A settled job's cost and how many clips it made, newest first, for one size.
CLIP_COSTS = (
    "SELECT j.id, j.cost_micros, (SELECT COUNT(*) FROM results r WHERE r.job_id = j.id) AS clips FROM jobs j "
    "WHERE j.resolution = ? AND j.duration = ? AND j.dry_run = ? AND j.state = ? AND j.cost_micros IS NOT NULL "
    "ORDER BY j.id DESC LIMIT ?"
)
#: What a ledger row counts as in spend: its charge once settled, its hold while open, nothing once released.
_AMOUNT = "CASE status WHEN 'settled' THEN charged_micros WHEN 'held' THEN held_micros ELSE 0 END"


class SpendFigures:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def clip_costs(self, resolution: str, duration: int, dry_run: bool, limit: int) -> list[Micros]:
        """Per-clip costs Runware reported for the last `limit` settled jobs of one size, newest first."""
        rows = await self._db.fetchall(CLIP_COSTS, (resolution, duration, int(dry_run), str(JobState.SUCCEEDED), limit))
        return [int(r[1]) // int(r[2]) for r in rows if int(r[2]) > 0]

    async def operator_spend(self, start: datetime, end: datetime, *, dry_run: bool) -> SpendLine:
        """Everything the operator's `generate` jobs spent in [start, end), whatever server (they have none)."""
        row = await self._db.fetchone(
            "SELECT COALESCE(SUM(CASE status WHEN 'settled' THEN charged_micros ELSE 0 END), 0), "
            "COALESCE(SUM(CASE status WHEN 'held' THEN held_micros ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN status = 'released' THEN 0 ELSE 1 END), 0) "
            "FROM ledger WHERE payer = 'operator' AND dry_run = ? AND created_at >= ? AND created_at < ?",
            (int(dry_run), to_db_time(start), to_db_time(end)),
        )
        assert row is not None
        return SpendLine(0, int(row[0]), int(row[1]), int(row[2]))

    async def hourly(
        self, guild_id: int, start: datetime, end: datetime, now: datetime, *, dry_run: bool
    ) -> Sequence[tuple[datetime, Micros]]:
        """The server's spend (operator apart) per UTC hour of [start, end), up to the hour holding `now`."""
        rows = await self._db.fetchall(
            f"SELECT created_at, {_AMOUNT} FROM ledger WHERE guild_id = ? AND dry_run = ? AND payer != 'operator' "
            "AND created_at >= ? AND created_at < ?",
            (guild_id, int(dry_run), to_db_time(start), to_db_time(end)),
        )
        by_hour: dict[datetime, Micros] = {}
        for created, amount in rows:
            hour = from_db_time(str(created)).replace(minute=0, second=0, microsecond=0)
            by_hour[hour] = by_hour.get(hour, 0) + int(amount)
        last = min(end - timedelta(hours=1), now.astimezone(UTC).replace(minute=0, second=0, microsecond=0))
        out: list[tuple[datetime, Micros]] = []
        hour = start.astimezone(UTC)
        while hour <= last:
            out.append((hour, by_hour.get(hour, 0)))
            hour += timedelta(hours=1)
        return out
