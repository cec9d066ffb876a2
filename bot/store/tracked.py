"""The poll sweep's view of the jobs Runware may still be working on: lean rows, read without the params or texts."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from bot.core.models import JobState
from bot.store.driver import Database, from_db_time


class TrackedJob(NamedTuple):
    """What a poll sweep needs of a job Runware may still be working on: a few columns, no params or texts.

    The sweep loads the whole `Job` only for the few jobs that something happened to. (A tuple: thousands are
    built per sweep.)
    """

    id: int
    task_uuid: str
    state: JobState
    variations: int
    dry_run: bool
    started_at: datetime  # submitted_at, else created_at: where max_wait counts from
    status_message_id: int | None


async def tracked_jobs(db: Database) -> list[TrackedJob]:
    """Submitted jobs, and cancelled ones whose money is still held (Runware may still bill them), oldest first."""
    rows = await db.fetchall(
        "SELECT id, task_uuid, state, variations, dry_run, COALESCE(submitted_at, created_at) AS started_at, "
        "status_message_id FROM jobs WHERE state = ? OR (state = ? AND EXISTS "
        "(SELECT 1 FROM ledger WHERE ledger.job_id = jobs.id AND ledger.status = 'held')) ORDER BY id",
        (str(JobState.SUBMITTED), str(JobState.CANCELLED)),
    )
    states = {str(state): state for state in JobState}
    return [  # by position, in the SELECT's order: the cheapest read of a row on both drivers
        TrackedJob(row[0], row[1], states[row[2]], row[3], bool(row[4]), from_db_time(row[5]), row[6]) for row in rows
    ]
