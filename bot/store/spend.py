"""Spend figures read from the ledger: what a limit has used in its window, and a server's report.

Spent, for a limit, is the settled charges plus the open holds of the ledger rows that limit covers, attributed to
the period by the row's reservation time:

- member and role limits: that member's rows in that server paid by the member (not pool jobs);
- channel limits: rows with that budget channel (member or pool payer);
- server limits: every row of the server except the operator's.

Dry-run rows count only against dry-run checks and real rows only against real ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.core.models import Micros, Period, Scope
from bot.core.policy import Limit, period_window
from bot.store.driver import Conn, Row, to_db_time


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


# No boolean arithmetic (PostgreSQL has none): counts are SUM(CASE ...).
_SUMS = (
    "COALESCE(SUM(CASE status WHEN 'settled' THEN charged_micros ELSE 0 END), 0) AS settled, "
    "COALESCE(SUM(CASE status WHEN 'held' THEN held_micros ELSE 0 END), 0) AS held, "
    "COALESCE(SUM(CASE WHEN status != 'released' THEN 1 ELSE 0 END), 0) AS live_jobs"
)
_WINDOW = "guild_id = ? AND dry_run = ? AND created_at >= ? AND created_at < ?"
#: Which ledger rows each scope's limits cover (see the module docstring).
_SCOPE_FILTER: dict[Scope, str] = {
    Scope.MEMBER: "user_id = ? AND payer = 'member'",
    Scope.ROLE: "user_id = ? AND payer = 'member'",
    Scope.CHANNEL: "budget_channel_id = ? AND payer IN ('member', 'pool')",
    Scope.SERVER: "payer != 'operator'",
}


async def usage(
    conn: Conn, limit: Limit, *, guild_id: int, user_id: int | None, now: datetime, dry_run: bool
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
    row = await conn.fetchone(f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND {_SCOPE_FILTER[limit.scope]}", params)
    assert row is not None
    return int(row[0]), int(row[1]), start, end


def _grouped(column: str, payer: str) -> str:
    # The sums are named in a subquery: PostgreSQL's ORDER BY cannot use output names inside an expression.
    return (
        f"SELECT * FROM (SELECT {column}, {_SUMS}, "
        "SUM(CASE WHEN status = 'released' THEN 1 ELSE 0 END) AS released, COUNT(*) AS n "
        f"FROM ledger WHERE {_WINDOW} AND payer = '{payer}' GROUP BY {column}) AS lines "
        f"WHERE n > released ORDER BY settled + held DESC, {column} LIMIT ?"
    )


def _lines(rows: Iterable[Row]) -> tuple[SpendLine, ...]:
    return tuple(SpendLine(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows)


async def report(conn: Conn, guild_id: int, period: Period, now: datetime, *, dry_run: bool, top: int) -> SpendReport:
    """The server's spend in the period holding `now`, read on one snapshot connection."""
    start, end = period_window(period, now)
    window = (guild_id, int(dry_run), to_db_time(start), to_db_time(end))
    totals = await conn.fetchone(f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND payer != 'operator'", window)
    operator = await conn.fetchone(f"SELECT {_SUMS} FROM ledger WHERE {_WINDOW} AND payer = 'operator'", window)
    members = await conn.fetchall(_grouped("user_id", "member"), (*window, top))
    channels = await conn.fetchall(_grouped("budget_channel_id", "member"), (*window, top))
    pools = await conn.fetchall(_grouped("budget_channel_id", "pool"), (*window, top))
    per_day = await conn.fetchall(
        f"SELECT substr(created_at, 1, 10), {_SUMS} FROM ledger WHERE {_WINDOW} AND payer != 'operator' GROUP BY 1",
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
        top_members=_lines(members),
        top_channels=_lines(channels),
        pools=_lines(pools),
        daily=tuple(daily),
        operator=SpendLine(0, int(operator[0]), int(operator[1]), int(operator[2])),
    )
