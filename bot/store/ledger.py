"""SpendLedger: the only writer of money. Reserve (check every limit and hold, in one transaction), settle, release.

Spent, for a limit, is the settled charges plus the open holds of the ledger rows that limit covers, attributed to
the period by the row's reservation time:

- member and role limits: that member's rows in that server paid by the member (not pool jobs);
- channel limits: rows with that budget channel (member or pool payer);
- server limits: every row of the server except the operator's.

Dry-run rows count only against dry-run checks and real rows only against real ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import aiosqlite

from bot.core.errors import ConcurrencyLimited, OverLimit
from bot.core.models import Job, JobState, Micros, Payer, Period, Scope, format_usd, utc_now
from bot.core.policy import Limit, applicable_limits, fits, left_micros, period_window
from bot.store.guilds import configured_limits
from bot.store.jobs import Clock, NewJob, insert_job
from bot.store.sqlite.db import Database, fetch_all, fetch_one, to_db_time, write

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one limit stands now: settled spend, open reservations, what is left and when the window resets."""

    limit: Limit
    spent_micros: Micros
    reserved_micros: Micros
    left_micros: Micros
    window_start: datetime
    resets_at: datetime

    @property
    def used_micros(self) -> Micros:
        return self.spent_micros + self.reserved_micros


@dataclass(frozen=True, slots=True)
class SpendLine:
    """Spend of one member, channel or pool (or the operator) in a report."""

    id: int
    settled_micros: Micros
    reserved_micros: Micros
    jobs: int

    @property
    def total_micros(self) -> Micros:
        return self.settled_micros + self.reserved_micros


@dataclass(frozen=True, slots=True)
class SpendReport:
    """A server's spend in one period window. Totals exclude the operator, whose spend is shown apart.

    `top_members` and `top_channels` hold member-paid spend; `pools` hold pool-paid spend by pool channel, so the
    full member lines plus the full pool lines add up to the totals. `daily` has one entry per UTC day of the
    window up to the report time (zeros included). `jobs` counts jobs that held or spent money (not released).
    """

    guild_id: int
    period: Period
    window_start: datetime
    window_end: datetime
    dry_run: bool
    settled_micros: Micros
    reserved_micros: Micros
    jobs: int
    top_members: tuple[SpendLine, ...]
    top_channels: tuple[SpendLine, ...]
    pools: tuple[SpendLine, ...]
    daily: tuple[tuple[date, Micros], ...]
    operator: SpendLine

    @property
    def total_micros(self) -> Micros:
        return self.settled_micros + self.reserved_micros


_SUMS = (
    "COALESCE(SUM(CASE status WHEN 'settled' THEN charged_micros ELSE 0 END), 0) AS settled, "
    "COALESCE(SUM(CASE status WHEN 'held' THEN held_micros ELSE 0 END), 0) AS held, "
    "COALESCE(SUM(status != 'released'), 0) AS live_jobs"
)
_WINDOW = "guild_id = ? AND dry_run = ? AND created_at >= ? AND created_at < ?"
#: Which ledger rows each scope's limits cover (see the module docstring).
_SCOPE_FILTER: dict[Scope, str] = {
    Scope.MEMBER: "user_id = ? AND payer = 'member'",
    Scope.ROLE: "user_id = ? AND payer = 'member'",
    Scope.CHANNEL: "budget_channel_id = ? AND payer IN ('member', 'pool')",
    Scope.SERVER: "payer != 'operator'",
}


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

    @staticmethod
    async def _usage(
        conn: aiosqlite.Connection, limit: Limit, *, guild_id: int, user_id: int | None, now: datetime, dry_run: bool
    ) -> tuple[Micros, Micros, datetime, datetime]:
        """(settled, held, window start, window end) of the rows `limit` covers in its window holding `now`."""
        start, end = period_window(limit.period, now)
        params: list[object] = [guild_id, int(dry_run), to_db_time(start), to_db_time(end)]
        if limit.scope is Scope.ROLE:
            if user_id is None:
                raise ValueError("a role limit's spend is per member: pass user_id")
            params.append(user_id)
        elif limit.scope in (Scope.MEMBER, Scope.CHANNEL):
            params.append(limit.target_id)
        row = await fetch_one(
            conn, f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND {_SCOPE_FILTER[limit.scope]}", params
        )
        assert row is not None
        return int(row[0]), int(row[1]), start, end

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
                settled, held, start, end = await self._usage(
                    conn, limit, guild_id=guild_id, user_id=user_id, now=now, dry_run=dry_run
                )
                out.append(Standing(limit, settled, held, left_micros(limit, settled + held), start, end))
        return out

    # -- money ---------------------------------------------------------------------------------------------------

    async def reserve(self, job: NewJob, *, role_ids: Iterable[int], concurrency_cap: int | None, now: datetime) -> Job:
        """Check every limit and the concurrency cap, then write the job and its hold: one transaction, no network.

        Raises OverLimit (naming the limit, what is left and when it resets) or ConcurrencyLimited.
        """
        if job.estimate_micros < 0:
            raise ValueError("estimate_micros must not be negative")
        roles = tuple(role_ids)
        async with self._db.transaction() as conn:
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
                    settled, held, _, end = await self._usage(
                        conn, limit, guild_id=job.guild_id, user_id=job.user_id, now=now, dry_run=job.dry_run
                    )
                    if not fits(limit, settled + held, job.estimate_micros):
                        raise _over_limit(limit, settled + held, job.estimate_micros, end)
            if concurrency_cap is not None:
                row = await fetch_one(
                    conn,
                    "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN (?, ?)",
                    (job.guild_id, job.user_id, str(JobState.RESERVED), str(JobState.SUBMITTED)),
                )
                running = int(row[0]) if row is not None else 0
                if running >= concurrency_cap:
                    raise ConcurrencyLimited(running=running, cap=concurrency_cap)
            created = await insert_job(conn, job, state=JobState.RESERVED, now=now)
            await write(
                conn,
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
            rows = await fetch_all(
                conn,
                "UPDATE ledger SET status = 'settled', charged_micros = COALESCE(?, held_micros), closed_at = ? "
                "WHERE job_id = ? AND status = 'held' RETURNING charged_micros",
                (cost_micros, to_db_time(self._clock()), job_id),
            )
            if rows and cost_micros is not None:
                await write(
                    conn, "UPDATE jobs SET cost_micros = COALESCE(cost_micros, ?) WHERE id = ?", (cost_micros, job_id)
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
        start, end = period_window(period, now)
        window = (guild_id, int(dry_run), to_db_time(start), to_db_time(end))

        def lines(rows: Iterable[aiosqlite.Row]) -> tuple[SpendLine, ...]:
            return tuple(SpendLine(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows)

        def grouped(column: str, payer: str) -> str:
            return (
                f"SELECT {column}, {_SUMS} FROM ledger WHERE {_WINDOW} AND payer = '{payer}' "
                f"GROUP BY {column} HAVING COUNT(*) > SUM(status = 'released') "
                f"ORDER BY settled + held DESC, {column} LIMIT ?"
            )

        async with self._db.snapshot() as conn:
            totals = await fetch_one(
                conn, f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND payer != 'operator'", window
            )
            operator = await fetch_one(
                conn, f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND payer = 'operator'", window
            )
            members = await fetch_all(conn, grouped("user_id", "member"), (*window, top))
            channels = await fetch_all(conn, grouped("budget_channel_id", "member"), (*window, top))
            pools = await fetch_all(conn, grouped("budget_channel_id", "pool"), (*window, top))
            per_day = await fetch_all(
                conn,
                f"SELECT substr(created_at, 1, 10), {_SUMS} FROM ledger WHERE {_WINDOW} AND payer != 'operator' "
                "GROUP BY 1",
                window,
            )
        assert totals is not None and operator is not None
        by_day = {date.fromisoformat(r[0]): int(r[1]) + int(r[2]) for r in per_day}
        last = min(end - timedelta(days=1), now.astimezone(UTC)).date()
        daily: list[tuple[date, Micros]] = []
        day = start.date()
        while day <= last:
            daily.append((day, by_day.get(day, 0)))
            day += timedelta(days=1)
        return SpendReport(
            guild_id=guild_id,
            period=period,
            window_start=start,
            window_end=end,
            dry_run=dry_run,
            settled_micros=int(totals[0]),
            reserved_micros=int(totals[1]),
            jobs=int(totals[2]),
            top_members=lines(members),
            top_channels=lines(channels),
            pools=lines(pools),
            daily=tuple(daily),
            operator=SpendLine(0, int(operator[0]), int(operator[1]), int(operator[2])),
        )
