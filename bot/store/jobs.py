"""JobStore: job and result rows, compare-and-set transitions, webhook receipts and a small key-value table.

Jobs are created only by `SpendLedger.reserve` (the row and its reservation are one transaction); everything after
that moves through `transition`, which is a compare-and-set: zero rows means another path already won.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.core.models import (
    FINAL_JOB_STATES,
    JOB_TRANSITIONS,
    RESULT_TRANSITIONS,
    ClipResult,
    Job,
    JobSpec,
    JobState,
    Payer,
    ResultState,
    utc_now,
)
from bot.store.driver import Conn, Database, Row, from_db_time, marks, opt_time, to_db_time
from bot.store.tracked import TrackedJob, tracked_jobs

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class NewJob(JobSpec):
    """A job about to be reserved: everything the row needs except what the store assigns."""

    budget_channel_id: int
    params: Mapping[str, Any]
    parent_job_id: int | None = None
    thread_id: int | None = None


def _predecessors(table: Mapping[Any, frozenset[Any]], to: Any) -> tuple[str, ...]:
    return tuple(str(state) for state, nxt in table.items() if to in nxt)


_JOB_PREDECESSORS = {to: _predecessors(JOB_TRANSITIONS, to) for to in JobState}
_RESULT_PREDECESSORS = {to: _predecessors(RESULT_TRANSITIONS, to) for to in ResultState}
_UNFINISHED = (JobState.RESERVED, JobState.SUBMITTED, JobState.CANCELLED)
_IDS_PER_QUERY = 500  # bound parameters per `id IN (...)` (SQLite allows 32766 since 3.32, older builds 999)


def _dump(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        task_uuid=row["task_uuid"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        payer=Payer(row["payer"]),
        pool_channel_id=row["pool_channel_id"],
        prompt=row["prompt"],
        resolution=row["resolution"],
        duration=row["duration"],
        variations=row["variations"],
        prompt_optimizer=bool(row["prompt_optimizer"]),
        frame_count=row["frame_count"],
        state=JobState(row["state"]),
        estimate_micros=row["estimate_micros"],
        cost_micros=row["cost_micros"],
        error=row["error"],
        dry_run=bool(row["dry_run"]),
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        submitted_at=opt_time(row["submitted_at"]),
        finished_at=opt_time(row["finished_at"]),
        status_channel_id=row["status_channel_id"],
        status_message_id=row["status_message_id"],
        thread_id=row["thread_id"],
        parent_job_id=row["parent_job_id"],
        extra=dict(json.loads(row["params_json"] or "{}")),
        budget_channel_id=row["budget_channel_id"],
        submit_attempts=row["submit_attempts"],
    )


def result_from_row(row: Row) -> ClipResult:
    return ClipResult(
        id=row["id"],
        job_id=row["job_id"],
        video_uuid=row["video_uuid"],
        video_url=row["video_url"],
        seed=row["seed"],
        cost_micros=row["cost_micros"],
        state=ResultState(row["state"]),
        message_id=row["message_id"],
        created_at=from_db_time(row["created_at"]),
        channel_id=row["channel_id"],
        attempts=row["attempts"],
        delivered_at=opt_time(row["delivered_at"]),
    )


INSERT_JOB = """
INSERT INTO jobs (task_uuid, guild_id, channel_id, budget_channel_id, user_id, payer, pool_channel_id, prompt,
                  resolution, duration, variations, prompt_optimizer, frame_count, params_json, state,
                  estimate_micros, dry_run, created_at, updated_at, thread_id, parent_job_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING *
"""


async def insert_job(
    conn: Conn, job: NewJob, *, state: JobState, now: datetime, lease: tuple[str, datetime] | None = None
) -> Job:
    """Insert a job row and its lease row on a connection inside a transaction (used by the ledger's reservation);
    `lease`: (owner, until), the process that holds the new job (else its lease is free)."""
    at = to_db_time(now)
    params = _dump(job.params)
    rows = await conn.fetchall(
        INSERT_JOB,
        (
            job.task_uuid,
            job.guild_id,
            job.channel_id,
            job.budget_channel_id,
            job.user_id,
            str(job.payer),
            job.pool_channel_id,
            job.prompt,
            job.resolution,
            job.duration,
            job.variations,
            int(job.prompt_optimizer),
            job.frame_count,
            params,
            str(state),
            job.estimate_micros,
            int(job.dry_run),
            at,
            at,
            job.thread_id,
            job.parent_job_id,
        ),
    )
    created = job_from_row(rows[0])
    await conn.execute(
        "INSERT INTO job_leases (job_id, owner, until) VALUES (?, ?, ?)",
        (created.id, lease[0] if lease else None, to_db_time(lease[1]) if lease else None),
    )
    return created


class JobStore:
    """Reads and compare-and-set writes of jobs and their results."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> str:
        return to_db_time(self._clock())

    # -- jobs ----------------------------------------------------------------------------------------------------

    async def get(self, job_id: int) -> Job | None:
        row = await self._db.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else job_from_row(row)

    async def by_task_uuid(self, task_uuid: str) -> Job | None:
        row = await self._db.fetchone("SELECT * FROM jobs WHERE task_uuid = ?", (task_uuid,))
        return None if row is None else job_from_row(row)

    async def transition(
        self, job_id: int, to: JobState, *, error: str | None = None, cost_micros: int | None = None
    ) -> bool:
        """Move a job to `to` if its current state may lead there; False when another path got there first."""
        sources = _JOB_PREDECESSORS[to]
        if not sources:
            return False
        now = self._now()
        final = to in FINAL_JOB_STATES
        count = await self._db.execute(
            f"""
            UPDATE jobs SET state = ?, updated_at = ?,
                error = COALESCE(?, error),
                cost_micros = COALESCE(?, cost_micros),
                submitted_at = CASE WHEN ? THEN COALESCE(submitted_at, ?) ELSE submitted_at END,
                finished_at = CASE WHEN ? THEN ? ELSE finished_at END
            WHERE id = ? AND state IN ({marks(len(sources))})
            """,
            (str(to), now, error, cost_micros, to is JobState.SUBMITTED, now, final, now, job_id, *sources),
        )
        if count == 0:
            log.debug("job=%s transition to %s lost (already moved on)", job_id, to)
        return count == 1

    async def set_params(self, job_id: int, params: Mapping[str, Any]) -> None:
        """Replace the job's extra parameters (e.g. the exact task sent, for recovery and reroll)."""
        await self._db.execute(
            "UPDATE jobs SET params_json = ?, updated_at = ? WHERE id = ?", (_dump(params), self._now(), job_id)
        )

    async def set_status_message(self, job_id: int, *, channel_id: int, message_id: int) -> None:
        await self._db.execute(
            "UPDATE jobs SET status_channel_id = ?, status_message_id = ?, updated_at = ? WHERE id = ?",
            (channel_id, message_id, self._now(), job_id),
        )

    async def set_thread(self, job_id: int, thread_id: int) -> None:
        await self._db.execute(
            "UPDATE jobs SET thread_id = ?, updated_at = ? WHERE id = ?", (thread_id, self._now(), job_id)
        )

    async def tracked_task_uuids(self) -> list[str]:
        """Tasks Runware may still be working on: submitted ones, and cancelled ones whose money is still held."""
        rows = await self._db.fetchall(
            "SELECT task_uuid FROM jobs WHERE state = ? OR (state = ? AND EXISTS "
            "(SELECT 1 FROM ledger WHERE ledger.job_id = jobs.id AND ledger.status = 'held')) ORDER BY id",
            (str(JobState.SUBMITTED), str(JobState.CANCELLED)),
        )
        return [row[0] for row in rows]

    async def tracked(self) -> list[TrackedJob]:
        """The jobs of `tracked_task_uuids`, as lean rows for the poll sweep."""
        return await tracked_jobs(self._db)

    async def get_many(self, job_ids: Sequence[int]) -> dict[int, Job]:
        """Several jobs by id (those that exist), a few hundred per query."""
        out: dict[int, Job] = {}
        ids = list(dict.fromkeys(job_ids))
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            rows = await self._db.fetchall(f"SELECT * FROM jobs WHERE id IN ({marks(len(chunk))})", chunk)
            for row in rows:
                out[row["id"]] = job_from_row(row)
        return out

    async def reserved(self) -> list[Job]:
        """Jobs not yet acknowledged by Runware (recovery looks at these), oldest first."""
        rows = await self._db.fetchall("SELECT * FROM jobs WHERE state = ? ORDER BY id", (str(JobState.RESERVED),))
        return [job_from_row(row) for row in rows]

    async def final_with_money_held(self) -> list[int]:
        """Ids of final jobs whose reservation is still open (a crash between the final transition and the settle)."""
        finals = sorted(str(s) for s in FINAL_JOB_STATES)
        rows = await self._db.fetchall(
            "SELECT jobs.id FROM ledger JOIN jobs ON jobs.id = ledger.job_id "
            f"WHERE ledger.status = 'held' AND jobs.state IN ({marks(len(finals))}) ORDER BY jobs.id",
            finals,
        )
        return [int(row[0]) for row in rows]

    async def unfinished(self) -> list[Job]:
        rows = await self._db.fetchall(
            # A cancelled job is unfinished only while its money is held (Runware may still bill it).
            f"SELECT * FROM jobs WHERE state IN ({marks(len(_UNFINISHED))}) AND (state != ? OR EXISTS "
            "(SELECT 1 FROM ledger WHERE ledger.job_id = jobs.id AND ledger.status = 'held')) ORDER BY id",
            (*(str(s) for s in _UNFINISHED), str(JobState.CANCELLED)),
        )
        return [job_from_row(row) for row in rows]

    async def recent_for_member(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        rows = await self._db.fetchall(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [job_from_row(row) for row in rows]

    async def usual_seconds(
        self, resolution: str, duration: int, *, dry_run: bool = False, last: int = 50, at_least: int = 5
    ) -> float | None:
        """Median submit-to-finish time of the `last` jobs of this size that succeeded (None under `at_least`)."""
        rows = await self._db.fetchall(
            "SELECT submitted_at, finished_at FROM jobs WHERE resolution = ? AND duration = ? AND state = ? "
            "AND dry_run = ? AND submitted_at IS NOT NULL AND finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT ?",
            (resolution, duration, str(JobState.SUCCEEDED), int(dry_run), last),
        )
        if len(rows) < at_least:
            return None
        spans = [(from_db_time(r[1]) - from_db_time(r[0])).total_seconds() for r in rows]
        return float(statistics.median(spans))

    async def counts_by_state(self) -> dict[str, int]:
        counts = {str(state): 0 for state in JobState}
        for row in await self._db.fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[row[0]] = int(row[1])
        return counts

    # -- results -------------------------------------------------------------------------------------------------

    async def add_result(
        self, job_id: int, *, video_uuid: str, video_url: str, seed: int | None, cost_micros: int | None
    ) -> bool:
        """Record a clip once: the same (job, videoUUID) from webhook and poll is stored one time. True if new."""
        count = await self._db.execute(
            "INSERT INTO results (job_id, video_uuid, video_url, seed, cost_micros, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, video_uuid) DO NOTHING",
            (job_id, video_uuid, video_url, seed, cost_micros, self._now()),
        )
        return count == 1

    async def results(self, job_id: int) -> list[ClipResult]:
        rows = await self._db.fetchall("SELECT * FROM results WHERE job_id = ? ORDER BY id", (job_id,))
        return [result_from_row(row) for row in rows]

    async def get_result(self, result_id: int) -> ClipResult | None:
        row = await self._db.fetchone("SELECT * FROM results WHERE id = ?", (result_id,))
        return None if row is None else result_from_row(row)

    async def result_transition(
        self, result_id: int, to: ResultState, *, message_id: int | None = None, channel_id: int | None = None
    ) -> bool:
        """Compare-and-set a result's delivery state; DELIVERING counts an attempt, DELIVERED stamps the time."""
        sources = _RESULT_PREDECESSORS[to]
        if not sources:
            return False
        count = await self._db.execute(
            f"""
            UPDATE results SET state = ?,
                message_id = COALESCE(?, message_id),
                channel_id = COALESCE(?, channel_id),
                attempts = attempts + (CASE WHEN ? THEN 1 ELSE 0 END),
                delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END
            WHERE id = ? AND state IN ({marks(len(sources))})
            """,
            (
                str(to),
                message_id,
                channel_id,
                to is ResultState.DELIVERING,
                to is ResultState.DELIVERED,
                self._now(),
                result_id,
                *sources,
            ),
        )
        if count == 0:
            log.debug("result=%s transition to %s lost (already moved on)", result_id, to)
        return count == 1

    async def undelivered_results_for(self, job_id: int) -> list[ClipResult]:
        """One job's results that are still pending or mid-delivery."""
        rows = await self._db.fetchall(
            "SELECT * FROM results WHERE job_id = ? AND state IN (?, ?) ORDER BY id",
            (job_id, str(ResultState.PENDING), str(ResultState.DELIVERING)),
        )
        return [result_from_row(row) for row in rows]

    async def undelivered_results(self) -> list[ClipResult]:
        """Results still to post after a restart: pending or mid-delivery, of jobs that were not cancelled."""
        rows = await self._db.fetchall(
            "SELECT r.* FROM results r JOIN jobs j ON j.id = r.job_id "
            "WHERE r.state IN (?, ?) AND j.state != ? ORDER BY r.id",
            (str(ResultState.PENDING), str(ResultState.DELIVERING), str(JobState.CANCELLED)),
        )
        return [result_from_row(row) for row in rows]

    # -- receipts and kv -----------------------------------------------------------------------------------------

    async def record_receipt(self, key: str, task_uuid: str) -> bool:
        """Remember a webhook delivery; False if this key was seen before (a duplicate)."""
        count = await self._db.execute(
            "INSERT INTO webhook_receipts (key, task_uuid, received_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (key, task_uuid, self._now()),
        )
        return count == 1

    async def get_kv(self, key: str) -> str | None:
        row = await self._db.fetchone("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_kv(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def set_kv_if_absent(self, key: str, value: str) -> str:
        """Store `value` unless the key exists; return what is stored (first writer wins, e.g. webhook secret)."""
        async with self._db.transaction() as conn:
            await conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
            row = await conn.fetchone("SELECT value FROM kv WHERE key = ?", (key,))
        assert row is not None
        return str(row[0])
