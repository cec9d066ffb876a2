"""The poll sweep's view of the jobs Runware may still be working on: lean rows, read without the params or texts."""

from __future__ import annotations

from typing import NamedTuple

from bot.core.models import JobState
from bot.store.driver import Database


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
    #: submitted_at, else created_at: where max_wait counts from. Stored text (fixed-width UTC, `to_db_time`), which
    #: compares as time: the sweep compares it with a cutoff instead of parsing thousands of dates.
    started_at: str
    status_message_id: int | None
    lease_owner: str | None  # who holds the job's lease, and until when (stored text), as read
    lease_until: str | None


async def tracked_jobs(db: Database) -> list[TrackedJob]:
    """Submitted jobs, and cancelled ones whose money is still held (Runware may still bill them), oldest first."""
    rows = await db.fetchall(
        "SELECT id, task_uuid, state, variations, dry_run, COALESCE(submitted_at, created_at) AS started_at, "
        "status_message_id, l.owner, l.until FROM jobs LEFT JOIN job_leases l ON l.job_id = jobs.id "
        "WHERE state = ? OR (state = ? AND EXISTS "
        "(SELECT 1 FROM ledger WHERE ledger.job_id = jobs.id AND ledger.status = 'held')) ORDER BY id",
        (str(JobState.SUBMITTED), str(JobState.CANCELLED)),
    )
    states = {str(state): state for state in JobState}
    return [  # by position, in the SELECT's order: the cheapest read of a row on both drivers
        TrackedJob(row[0], row[1], states[row[2]], row[3], bool(row[4]), row[5], row[6], row[7], row[8]) for row in rows
    ]
