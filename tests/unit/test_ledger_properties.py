"""Property test of the ledger over random interleavings of reserve, settle, release and the passing of time.

The invariants, precisely:

1. Admission: a reservation is admitted exactly when it fits every applicable limit given the spend so far
   (settled charges + open holds in each limit's window); a reference model in this file decides the same.
2. No limit is ever over-reserved: for every limit and every period window, the sum over covered ledger rows of
   (open hold, or min(charge, hold) once settled, or 0 once released) never exceeds the limit. A settle may charge
   more than the estimate (that is Runware's real bill, not a reservation), so raw spend can pass a limit only by
   exactly those overcharges, and then nothing more is admitted until it is back under.
3. Idempotency: a second settle or release of a job returns False and leaves the ledger byte-for-byte unchanged.
4. Exactness: every settled row charges the reported cost (or the estimate when none was reported), so settled
   totals equal the sum of reported costs; the report's totals equal the ledger's sums.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import OverLimit
from bot.core.models import Micros, Payer, Period, Scope, usd_to_micros
from bot.core.policy import Limit, applicable_limits, period_window
from bot.store.driver import from_db_time
from bot.store.guilds import GuildDefaults, GuildStore
from bot.store.jobs import NewJob
from bot.store.ledger import SpendLedger
from tests.helpers import empty_postgres_database, open_test_database
from tests.helpers import new_job as make_new_job

GUILD, MOD = 100, 900
U1, U2, U3 = 1, 2, 3
R1, R2 = 51, 52
C1, C2, POOL = 11, 12, 13
ROLES: dict[int, tuple[int, ...]] = {U1: (R1,), U2: (R1, R2), U3: ()}
CONFIGURED = [
    Limit(Scope.MEMBER, U1, Period.DAY, usd_to_micros("1.00")),
    Limit(Scope.ROLE, R1, Period.DAY, usd_to_micros("0.60")),
    Limit(Scope.ROLE, R2, Period.WEEK, usd_to_micros("1.50")),
    Limit(Scope.ROLE, GUILD, Period.MONTH, usd_to_micros("2.00")),  # @everyone
    Limit(Scope.CHANNEL, C1, Period.DAY, usd_to_micros("0.80")),
    Limit(Scope.CHANNEL, POOL, Period.WEEK, usd_to_micros("1.20")),
    Limit(Scope.SERVER, GUILD, Period.WEEK, usd_to_micros("3.00")),
]
MEMBER_DEFAULTS = {Period.DAY: usd_to_micros("0.50")}
SERVER_DEFAULTS = {Period.MONTH: usd_to_micros("5.00")}
START = datetime(2025, 1, 30, 20, 0, tzinfo=UTC)  # Thursday evening: day, week and month boundaries are near
ESTIMATES = [usd_to_micros(x) for x in ("0.10", "0.20", "0.30", "0.50")]  # sums hit limits exactly
HELD, SETTLED, RELEASED = "held", "settled", "released"


@dataclass
class Row:
    job_id: int
    user_id: int
    channel_id: int
    payer: Payer
    dry_run: bool
    created_at: datetime
    held: Micros
    charged: Micros = 0
    status: str = HELD

    def used(self) -> Micros:
        return {HELD: self.held, SETTLED: self.charged, RELEASED: 0}[self.status]

    def capped(self) -> Micros:
        return {HELD: self.held, SETTLED: min(self.charged, self.held), RELEASED: 0}[self.status]


def covers(limit: Limit, row: Row, user_id: int) -> bool:
    """Which rows count against a limit (SPEC §5): the ledger must agree with this."""
    if limit.scope in (Scope.MEMBER, Scope.ROLE):
        return row.user_id == user_id and row.payer is Payer.MEMBER
    if limit.scope is Scope.CHANNEL:
        return row.channel_id == limit.target_id and row.payer in (Payer.MEMBER, Payer.POOL)
    return row.payer is not Payer.OPERATOR


@functools.cache
def limits_of(user_id: int, channel_id: int) -> tuple[Limit, ...]:
    return tuple(
        applicable_limits(
            payer=Payer.POOL if channel_id == POOL else Payer.MEMBER,
            guild_id=GUILD,
            user_id=user_id,
            role_ids=ROLES[user_id],
            channel_id=channel_id,
            configured=CONFIGURED,
            member_defaults=MEMBER_DEFAULTS,
            server_defaults=SERVER_DEFAULTS,
        )
    )


def in_window(row: Row, limit: Limit, at: datetime) -> bool:
    start, end = period_window(limit.period, at)
    return start <= row.created_at < end


def model_fits(rows: list[Row], user_id: int, channel_id: int, estimate: Micros, dry_run: bool, now: datetime) -> bool:
    for limit in limits_of(user_id, channel_id):
        used = sum(
            r.used() for r in rows if r.dry_run == dry_run and in_window(r, limit, now) and covers(limit, r, user_id)
        )
        if limit.amount_micros == 0 or used + estimate > limit.amount_micros:
            return False  # a $0 limit blocks every job
    return True


def ledger_rows(raw: list[Any]) -> list[Row]:
    return [
        Row(
            job_id=r["job_id"],
            user_id=r["user_id"],
            channel_id=r["budget_channel_id"],
            payer=Payer(r["payer"]),
            dry_run=bool(r["dry_run"]),
            created_at=from_db_time(r["created_at"]),
            held=r["held_micros"],
            charged=r["charged_micros"],
            status=r["status"],
        )
        for r in raw
    ]


def check_never_over_reserved(rows: list[Row]) -> None:
    """Invariant 2, on the rows as stored (not the model): every limit, every window that has rows."""
    checks: set[tuple[Limit, int | None, bool]] = set()
    for user_id, channel_id, dry_run in itertools.product(ROLES, (C1, C2, POOL), (False, True)):
        for limit in limits_of(user_id, channel_id):
            checks.add((limit, user_id if limit.scope in (Scope.MEMBER, Scope.ROLE) else None, dry_run))
    for limit, user_id, dry_run in checks:
        windows: dict[datetime, list[Row]] = {}
        for r in rows:
            if r.dry_run == dry_run and covers(limit, r, user_id or 0):
                windows.setdefault(period_window(limit.period, r.created_at)[0], []).append(r)
        for start, covered in windows.items():
            capped = sum(r.capped() for r in covered)
            overcharge = sum(max(0, r.charged - r.held) for r in covered if r.status == SETTLED)
            assert capped <= limit.amount_micros, (limit, user_id, start, covered)
            assert sum(r.used() for r in covered) <= limit.amount_micros + overcharge


reserve_op = st.tuples(
    st.just("reserve"),
    st.sampled_from(sorted(ROLES)),
    st.sampled_from([C1, C2, POOL]),
    st.sampled_from(ESTIMATES),
    st.sampled_from([False, False, False, True]),
)
burst_op = st.tuples(st.just("burst"), st.lists(reserve_op, min_size=2, max_size=6))
settle_op = st.tuples(st.just("settle"), st.integers(0, 60), st.sampled_from([None, 0.0, 0.5, 1.0, 1.5]))
release_op = st.tuples(st.just("release"), st.integers(0, 60))
advance_op = st.tuples(st.just("advance"), st.sampled_from([1, 3, 7, 25, 24 * 6, 24 * 30]))
operations = st.lists(
    st.one_of(reserve_op, reserve_op, burst_op, settle_op, settle_op, release_op, advance_op), min_size=1, max_size=40
)


async def scenario(ops: list[tuple[Any, ...]], target: Path | str) -> None:
    uuids = itertools.count()
    if isinstance(target, str):
        await empty_postgres_database(target)
        db = open_test_database(target)
    else:
        db = open_test_database(target / "ledger.sqlite3", synchronous="NORMAL")
    await db.open()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(db.close)
        guilds = GuildStore(db, defaults=GuildDefaults(), clock=lambda: START)
        for lim in CONFIGURED:
            await guilds.set_limit(GUILD, MOD, lim.scope, lim.target_id, lim.period, lim.amount_micros)
        ledger = SpendLedger(db, member_defaults=MEMBER_DEFAULTS, server_defaults=SERVER_DEFAULTS)
        model: dict[int, Row] = {}
        reported: dict[int, Micros] = {}
        now = START

        def new_job(user_id: int, channel_id: int, estimate: Micros, dry_run: bool) -> NewJob:
            pool = channel_id == POOL
            return make_new_job(
                task_uuid=f"t{next(uuids)}",
                guild_id=GUILD,
                channel_id=channel_id,
                budget_channel_id=channel_id,
                user_id=user_id,
                payer=Payer.POOL if pool else Payer.MEMBER,
                pool_channel_id=channel_id if pool else None,
                prompt="p",
                estimate_micros=estimate,
                dry_run=dry_run,
            )

        def remember(job_id: int, new: NewJob) -> None:
            model[job_id] = Row(job_id, new.user_id, new.channel_id, new.payer, new.dry_run, now, new.estimate_micros)

        async def dump() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in await db.fetchall("SELECT * FROM ledger ORDER BY job_id")]

        async def close(kind: str, pick: int, apply: Callable[[int], Any], after: Callable[[Row], None]) -> None:
            if not model:
                return
            job_id = sorted(model)[pick % len(model)]
            before = await dump()
            changed = await apply(job_id)
            if model[job_id].status == HELD:
                assert changed, f"{kind} of an open hold must succeed"
                after(model[job_id])
            else:
                assert not changed and await dump() == before, f"a second {kind} must change nothing"

        for op in ops:
            if op[0] == "reserve":
                _, user_id, channel_id, estimate, dry_run = op
                new = new_job(user_id, channel_id, estimate, dry_run)
                expected = model_fits(list(model.values()), user_id, channel_id, estimate, dry_run, now)
                try:
                    job = await ledger.reserve(new, role_ids=ROLES[user_id], concurrency_cap=None, now=now)
                except OverLimit:
                    assert not expected, "refused a reservation that fits every limit"
                else:
                    assert expected, "admitted a reservation over a limit"
                    remember(job.id, new)
            elif op[0] == "burst":  # concurrent: the order is the lock's, so only invariant 2 is checked
                news = [new_job(*item[1:]) for item in op[1]]
                outcomes = await asyncio.gather(
                    *(ledger.reserve(n, role_ids=ROLES[n.user_id], concurrency_cap=None, now=now) for n in news),
                    return_exceptions=True,
                )
                for new, outcome in zip(news, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        assert isinstance(outcome, OverLimit), outcome
                    else:
                        remember(outcome.id, new)
            elif op[0] == "settle":
                _, pick, fraction = op

                def cost_for(job_id: int, fraction: float | None = fraction) -> int | None:
                    return None if fraction is None else int(model[job_id].held * fraction)

                def settled(row: Row, fraction: float | None = fraction) -> None:
                    cost = cost_for(row.job_id)
                    row.status, row.charged = SETTLED, row.held if cost is None else cost
                    reported[row.job_id] = row.charged

                await close("settle", pick, lambda j: ledger.settle(j, cost_for(j)), settled)
            elif op[0] == "release":

                def released(row: Row) -> None:
                    row.status = RELEASED

                await close("release", op[1], ledger.release, released)
            else:
                now += timedelta(hours=op[1])

            stored = ledger_rows(await db.fetchall("SELECT * FROM ledger ORDER BY job_id"))
            assert [(r.job_id, r.held, r.charged, r.status, r.created_at) for r in stored] == [
                (r.job_id, r.held, r.charged, r.status, r.created_at)
                for r in sorted(model.values(), key=lambda r: r.job_id)
            ]
            check_never_over_reserved(stored)

        stored = ledger_rows(await db.fetchall("SELECT * FROM ledger"))
        assert sum(r.charged for r in stored if r.status == SETTLED) == sum(reported.values())
        for dry_run in (False, True):
            report = await ledger.report(GUILD, Period.MONTH, now, dry_run=dry_run)
            month = [
                r for r in stored if r.dry_run == dry_run and report.window_start <= r.created_at < report.window_end
            ]
            assert report.settled_micros == sum(r.charged for r in month if r.status == SETTLED)
            assert report.reserved_micros == sum(r.held for r in month if r.status == HELD)
            assert sum(v for _, v in report.daily) == report.total_micros


@pytest.fixture
def ledger_target(store_backend: str, request: pytest.FixtureRequest) -> str | None:
    """The shared PostgreSQL database (emptied per example), or None for a fresh SQLite file per example."""
    return str(request.getfixturevalue("pg_store_database")) if store_backend == "postgres" else None


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
def test_ledger_never_over_reserves_and_stays_exact(ops: list[tuple[Any, ...]], ledger_target: str | None) -> None:
    if ledger_target is not None:
        asyncio.run(scenario(ops, ledger_target))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(ops, Path(folder)))
