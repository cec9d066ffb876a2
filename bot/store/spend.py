"""SpendFigures: the figures moderators' reports and the price book read beside the ledger's own report.

Portable SQL only (SQLite and PostgreSQL alike): no date functions, no SQLite-only aggregates; medians and time
buckets are computed in Python over the few rows returned.
"""

from __future__ import annotations

from bot.core.models import JobState, Micros
from bot.store.sqlite.db import Database

#: A settled job's cost and how many clips it made, newest first, for one size.
CLIP_COSTS = (
    "SELECT j.id, j.cost_micros, COUNT(r.id) AS clips FROM jobs j JOIN results r ON r.job_id = j.id "
    "WHERE j.resolution = ? AND j.duration = ? AND j.dry_run = ? AND j.state = ? AND j.cost_micros IS NOT NULL "
    "GROUP BY j.id, j.cost_micros ORDER BY j.id DESC LIMIT ?"
)


class SpendFigures:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def clip_costs(self, resolution: str, duration: int, dry_run: bool, limit: int) -> list[Micros]:
        """Per-clip costs Runware reported for the last `limit` settled jobs of one size, newest first."""
        rows = await self._db.fetchall(CLIP_COSTS, (resolution, duration, int(dry_run), str(JobState.SUCCEEDED), limit))
        return [int(r[1]) // int(r[2]) for r in rows if int(r[2]) > 0]
