"""SpendLedger: the only writer of money. Reserve (check every limit and hold, in one transaction), settle, release.

What a limit covers and how spend is summed: see bot/store/spend.py.

Reservations are atomic across processes. Every reservation first takes `Conn.lock("budget:<guild>")`: SQLite's
write transaction already serialises everything, and PostgreSQL takes a transaction-scoped advisory lock on that
key, so two reservations in one server (in any process) sum and insert one after the other, while servers do not
wait on each other. Why one lock per server rather than per limit: a server limit (a config default) covers every
member's rows, and the concurrency cap and role limits need the member's rows too, so per-limit keys would in
practice always include the server's key; one key is as fast and obviously complete, even while a moderator adds
a limit. Why not SERIALIZABLE: a burst of /video calls in one server would fail and retry in a herd, and every
caller would need a retry loop; the lock queues them instead, and it ends with the transaction (commit, rollback
or a dropped connection), so nothing is left to clean up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.core.errors import ConcurrencyLimited, OverLimit
from bot.core.models import Job, JobState, Micros, Payer, Period, format_usd, utc_now
from bot.core.policy import Limit, applicable_limits, fits, left_micros
from bot.store import spend
from bot.store.driver import Database, to_db_time
from bot.store.guilds import configured_limits
from bot.store.jobs import Clock, NewJob, insert_job
from bot.store.spend import SpendLine, SpendReport, Standing

log = logging.getLogger(__name__)


def _over_limit(limit: Limit, used: Micros, estimate: Micros, resets_at: datetime) -> OverLimit:
    return OverLimit(
        scope=limit.scope,
        period=limit.period,
        is_default=limit.is_default,
        limit_amount=limit.amount_micros,
        left_micros=left_micros(limit, used),
        needed_micros=estimate,
        resets_at=resets_at,
    )


__all__ = ["SpendLedger", "SpendLine", "SpendReport", "Standing", "budget_lock_key"]


def budget_lock_key(guild_id: int) -> str:
    """The lock every reservation in a server takes first (see the module docstring)."""
    return f"budget:{guild_id}"


class SpendLedger:
    """Reservations, settlements and releases of money, and the spend figures built from them."""

    def __init__(
        self,
        db: Database,
        *,
        member_defaults: Mapping[Period, Micros],
        server_defaults: Mapping[Period, Micros],
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._member_defaults = dict(member_defaults)
        self._server_defaults = dict(server_defaults)
        self._clock = clock

    # -- limits --------------------------------------------------------------------------------------------------

    def _applicable(
        self,
        configured: Sequence[Limit],
        *,
        payer: Payer,
        guild_id: int,
        user_id: int,
        role_ids: Iterable[int],
        channel_id: int,
    ) -> list[Limit]:
        return applicable_limits(
            payer=payer,
            guild_id=guild_id,
            user_id=user_id,
            role_ids=role_ids,
            channel_id=channel_id,
            configured=configured,
            member_defaults=self._member_defaults,
            server_defaults=self._server_defaults,
        )

    async def limits_for(
        self, *, payer: Payer, guild_id: int, user_id: int, role_ids: Iterable[int], channel_id: int
    ) -> list[Limit]:
        """Every limit a job by this member in this (budget) channel must fit, configured or default."""
        if payer is Payer.OPERATOR:
            return []
        async with self._db.snapshot() as conn:
            configured = await configured_limits(conn, guild_id)
        return self._applicable(
            configured, payer=payer, guild_id=guild_id, user_id=user_id, role_ids=role_ids, channel_id=channel_id
        )

    async def standing(
        self, limit: Limit, *, guild_id: int, now: datetime, dry_run: bool = False, user_id: int | None = None
    ) -> Standing:
        """Spend against one limit now. Role limits count one member's spend, so they need `user_id`."""
        return (await self.standings([limit], guild_id=guild_id, now=now, dry_run=dry_run, user_id=user_id))[0]

    async def standings(
        self,
        limits: Sequence[Limit],
        *,
        guild_id: int,
        now: datetime,
        dry_run: bool = False,
        user_id: int | None = None,
    ) -> list[Standing]:
        """`standing` for several limits, read consistently (e.g. everything /usage shows)."""
        out: list[Standing] = []
        async with self._db.snapshot() as conn:
            for limit in limits:
                settled, held, start, end = await spend.usage(
                    conn, limit, guild_id=guild_id, user_id=user_id, now=now, dry_run=dry_run
                )
                out.append(Standing(limit, settled, held, left_micros(limit, settled + held), start, end))
        return out

    # -- money ---------------------------------------------------------------------------------------------------

    async def reserve(
        self,
        job: NewJob,
        *,
        role_ids: Iterable[int],
        concurrency_cap: int | None,
        now: datetime,
        lease: tuple[str, datetime] | None = None,
    ) -> Job:
        """Check every limit and the concurrency cap, then write the job and its hold: one transaction, no network.
        `lease` (owner, until): the job is written already claimed by that process (`Leases.grant`).

        Raises OverLimit (naming the limit, what is left and when it resets) or ConcurrencyLimited.
        """
        if job.estimate_micros < 0:
            raise ValueError("estimate_micros must not be negative")
        roles = tuple(role_ids)
        async with self._db.transaction() as conn:
            await conn.lock(budget_lock_key(job.guild_id))
            if job.payer is not Payer.OPERATOR:
                limits = self._applicable(
                    await configured_limits(conn, job.guild_id),
                    payer=job.payer,
                    guild_id=job.guild_id,
                    user_id=job.user_id,
                    role_ids=roles,
                    channel_id=job.budget_channel_id,
                )
                for limit in limits:
                    settled, held, _, end = await spend.usage(
                        conn, limit, guild_id=job.guild_id, user_id=job.user_id, now=now, dry_run=job.dry_run
                    )
                    if not fits(limit, settled + held, job.estimate_micros):
                        raise _over_limit(limit, settled + held, job.estimate_micros, end)
            if concurrency_cap is not None:
                # Every job that still runs at Runware counts: a cancelled one too, until its hold closes.
                running_sql = (
                    "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND (state IN (?, ?) OR (state = ? "
                    "AND EXISTS (SELECT 1 FROM ledger l WHERE l.job_id = jobs.id AND l.status = 'held')))"
                )
                states = (str(JobState.RESERVED), str(JobState.SUBMITTED), str(JobState.CANCELLED))
                row = await conn.fetchone(running_sql, (job.guild_id, job.user_id, *states))
                running = int(row[0]) if row is not None else 0
                if running >= concurrency_cap:
                    raise ConcurrencyLimited(running=running, cap=concurrency_cap)
            created = await insert_job(conn, job, state=JobState.RESERVED, now=now, lease=lease)
            await conn.execute(
                "INSERT INTO ledger (job_id, guild_id, user_id, budget_channel_id, payer, dry_run, created_at, "
                "held_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created.id,
                    job.guild_id,
                    job.user_id,
                    job.budget_channel_id,
                    str(job.payer),
                    int(job.dry_run),
                    to_db_time(now),
                    job.estimate_micros,
                ),
            )
        log.info(
            "job=%s task=%s guild=%s reserved %s for user=%s payer=%s",
            created.id,
            created.task_uuid,
            created.guild_id,
            format_usd(job.estimate_micros),
            job.user_id,
            job.payer,
        )
        return created

    async def settle(self, job_id: int, cost_micros: int | None) -> bool:
        """Turn a hold into a charge: Runware's reported cost, else the estimate. False if not held (no change)."""
        if cost_micros is not None and cost_micros < 0:
            raise ValueError("cost_micros must not be negative")
        async with self._db.transaction() as conn:
            rows = await conn.fetchall(
                "UPDATE ledger SET status = 'settled', charged_micros = COALESCE(?, held_micros), closed_at = ? "
                "WHERE job_id = ? AND status = 'held' RETURNING charged_micros",
                (cost_micros, to_db_time(self._clock()), job_id),
            )
            if rows and cost_micros is not None:
                await conn.execute(
                    "UPDATE jobs SET cost_micros = COALESCE(cost_micros, ?) WHERE id = ?", (cost_micros, job_id)
                )
        if not rows:
            log.debug("job=%s settle: no open hold (already closed)", job_id)
            return False
        log.info("job=%s settled at %s", job_id, format_usd(int(rows[0][0])))
        return True

    async def release(self, job_id: int) -> bool:
        """Drop a hold without charging (the job failed before any cost). False if not held (no change)."""
        count = await self._db.execute(
            "UPDATE ledger SET status = 'released', closed_at = ? WHERE job_id = ? AND status = 'held'",
            (to_db_time(self._clock()), job_id),
        )
        if count:
            log.info("job=%s reservation released", job_id)
        else:
            log.debug("job=%s release: no open hold (already closed)", job_id)
        return count == 1

    async def held_job_ids(self) -> list[int]:
        """Jobs whose reservation is still open (for start-up reconciliation and checks)."""
        rows = await self._db.fetchall("SELECT job_id FROM ledger WHERE status = 'held' ORDER BY job_id")
        return [int(row[0]) for row in rows]

    # -- reports -------------------------------------------------------------------------------------------------

    async def report(
        self, guild_id: int, period: Period, now: datetime, *, dry_run: bool = False, top: int = 10
    ) -> SpendReport:
        """The server's spend in the period holding `now`: totals, top members, channels, pools, per day."""
        async with self._db.snapshot() as conn:
            return await spend.report(conn, guild_id, period, now, dry_run=dry_run, top=top)
