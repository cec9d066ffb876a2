"""SpendLedger: which limits apply, what counts against them, races, settle/release, reports."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core.errors import ConcurrencyLimited, OverLimit
from bot.core.models import JobState, Payer, Period, Scope, usd_to_micros
from bot.core.policy import Limit
from bot.store.guilds import GuildDefaults, GuildStore
from bot.store.interface import Database
from bot.store.jobs import JobStore, NewJob
from bot.store.ledger import SpendLedger
from bot.ui.texts_errors import error_text
from tests.helpers import new_job, raises_saying

NOW = datetime(2025, 1, 31, 22, 0, tzinfo=UTC)  # a Friday, two hours before a new day and month
GUILD, MOD = 100, 900
ALICE, BOB, CAROL = 1, 2, 3
GENERAL, STUDIO, POOL = 10, 11, 12
ROLE_A, ROLE_B = 50, 51
CLIP = usd_to_micros("0.28")
_uuids = itertools.count()


@pytest.fixture
def ledger(db: Database) -> SpendLedger:
    return SpendLedger(
        db,
        member_defaults={Period.DAY: usd_to_micros(2), Period.MONTH: usd_to_micros(20)},
        server_defaults={Period.MONTH: usd_to_micros(200)},
    )


@pytest.fixture
def guilds(db: Database) -> GuildStore:
    return GuildStore(db, defaults=GuildDefaults(), clock=lambda: NOW)


def job(
    user_id: int = ALICE,
    channel_id: int = GENERAL,
    *,
    estimate: int = CLIP,
    payer: Payer = Payer.MEMBER,
    guild_id: int = GUILD,
    dry_run: bool = False,
) -> NewJob:
    return new_job(
        task_uuid=f"task-{next(_uuids)}",
        guild_id=guild_id,
        channel_id=channel_id,
        budget_channel_id=channel_id,
        user_id=user_id,
        payer=payer,
        pool_channel_id=channel_id if payer is Payer.POOL else None,
        prompt="neon rain",
        estimate_micros=estimate,
        dry_run=dry_run,
    )


async def reserve(
    ledger: SpendLedger, new: NewJob, *, roles: tuple[int, ...] = (), cap: int | None = None, now: datetime = NOW
) -> int:
    return (await ledger.reserve(new, role_ids=roles, concurrency_cap=cap, now=now)).id


async def fill(ledger: SpendLedger, new: NewJob, *, roles: tuple[int, ...] = (), now: datetime = NOW) -> int:
    """Reserve copies of `new` until a limit refuses; return how many fitted."""
    for count in itertools.count():
        try:
            await reserve(ledger, replace(new, task_uuid=f"task-{next(_uuids)}"), roles=roles, now=now)
        except OverLimit:
            return count
    raise AssertionError("unreachable")


# -- which limits apply ----------------------------------------------------------------------------------------------


async def test_config_defaults_apply_when_nothing_is_configured(ledger: SpendLedger) -> None:
    limits = await ledger.limits_for(payer=Payer.MEMBER, guild_id=GUILD, user_id=ALICE, role_ids=(), channel_id=GENERAL)
    assert set(limits) == {
        Limit(Scope.MEMBER, ALICE, Period.DAY, usd_to_micros(2), is_default=True),
        Limit(Scope.MEMBER, ALICE, Period.MONTH, usd_to_micros(20), is_default=True),
        Limit(Scope.SERVER, GUILD, Period.MONTH, usd_to_micros(200), is_default=True),
    }
    assert await fill(ledger, job()) == 7  # 7 x $0.28 = $1.96 <= $2.00 daily


async def test_member_limit_beats_role_limit(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, ROLE_A, Period.DAY, usd_to_micros(5))
    await guilds.set_limit(GUILD, MOD, Scope.MEMBER, ALICE, Period.DAY, usd_to_micros("0.60"))
    assert await fill(ledger, job(ALICE), roles=(ROLE_A,)) == 2
    assert await fill(ledger, job(BOB), roles=(ROLE_A,)) == 17  # role's $5: more than the $2 default


async def test_the_most_generous_role_applies(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, ROLE_A, Period.DAY, usd_to_micros("0.30"))
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, ROLE_B, Period.DAY, usd_to_micros("0.90"))
    assert await fill(ledger, job(ALICE), roles=(ROLE_A, ROLE_B)) == 3
    assert await fill(ledger, job(BOB), roles=(ROLE_A,)) == 1
    limits = await ledger.limits_for(
        payer=Payer.MEMBER, guild_id=GUILD, user_id=ALICE, role_ids=(ROLE_A, ROLE_B), channel_id=GENERAL
    )
    assert Limit(Scope.ROLE, ROLE_B, Period.DAY, usd_to_micros("0.90")) in limits


async def test_everyone_role_overrides_the_config_default(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, GUILD, Period.DAY, usd_to_micros("0.56"))
    assert await fill(ledger, job(ALICE)) == 2
    assert await fill(ledger, job(BOB)) == 2
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, ROLE_A, Period.DAY, usd_to_micros("1.12"))
    assert await fill(ledger, job(CAROL), roles=(ROLE_A,)) == 4  # a more generous role still wins


async def test_channel_and_server_limits_apply_on_top(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.CHANNEL, STUDIO, Period.DAY, usd_to_micros("0.84"))
    await guilds.set_limit(GUILD, MOD, Scope.SERVER, GUILD, Period.WEEK, usd_to_micros("1.68"))
    assert await fill(ledger, job(ALICE, STUDIO)) == 3  # the channel is full for everyone...
    assert await fill(ledger, job(BOB, STUDIO)) == 0
    assert await fill(ledger, job(BOB, GENERAL)) == 3  # ...but not elsewhere, until the server's week is full
    assert await fill(ledger, job(CAROL, GENERAL)) == 0


async def test_pool_jobs_skip_the_member_tier_but_count_for_channel_and_server(
    ledger: SpendLedger, guilds: GuildStore
) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.MEMBER, ALICE, Period.DAY, 0)  # Alice's own budget is blocked
    await guilds.set_limit(GUILD, MOD, Scope.CHANNEL, POOL, Period.DAY, usd_to_micros("1.12"))
    await guilds.set_limit(GUILD, MOD, Scope.SERVER, GUILD, Period.DAY, usd_to_micros("1.40"))
    with raises_saying(OverLimit, r"Your daily limit is \$0\.00"):
        await reserve(ledger, job(ALICE, GENERAL))
    assert await fill(ledger, job(ALICE, POOL, payer=Payer.POOL)) == 4
    limits = await ledger.limits_for(payer=Payer.POOL, guild_id=GUILD, user_id=ALICE, role_ids=(), channel_id=POOL)
    assert {lim.scope for lim in limits} == {Scope.CHANNEL, Scope.SERVER}
    bob_day = Limit(Scope.MEMBER, BOB, Period.DAY, usd_to_micros(2), is_default=True)
    assert (await ledger.standing(bob_day, guild_id=GUILD, now=NOW)).used_micros == 0
    assert await fill(ledger, job(BOB, GENERAL)) == 1  # the server's $1.40 has $0.28 left after the pool's $1.12


async def test_operator_jobs_pass_every_limit(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(0, MOD, Scope.SERVER, 0, Period.DAY, 0)
    assert await ledger.limits_for(payer=Payer.OPERATOR, guild_id=0, user_id=0, role_ids=(), channel_id=0) == []
    for _ in range(3):
        await reserve(ledger, job(0, 0, guild_id=0, payer=Payer.OPERATOR, estimate=usd_to_micros(100)))
    # and operator spend counts against nobody's server limit
    await guilds.set_limit(GUILD, MOD, Scope.SERVER, GUILD, Period.DAY, CLIP)
    await reserve(ledger, job(0, 0, guild_id=GUILD, payer=Payer.OPERATOR))
    assert await fill(ledger, job(ALICE)) == 1


async def test_clearing_a_limit_lifts_it(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.MEMBER, ALICE, Period.DAY, 0)
    assert await fill(ledger, job(ALICE)) == 0
    await guilds.clear_limit(GUILD, MOD, Scope.MEMBER, ALICE, Period.DAY)
    assert await fill(ledger, job(ALICE)) == 7  # back on the $2.00 default


async def test_a_zero_limit_blocks_even_a_zero_priced_job(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.MEMBER, ALICE, Period.DAY, 0)
    with pytest.raises(OverLimit) as err:
        await reserve(ledger, job(ALICE, estimate=0))
    assert err.value.limit_amount == 0 and err.value.scope is Scope.MEMBER
    await reserve(ledger, job(BOB, estimate=0))  # a $0 job still fits a limit that is not $0


async def test_a_cancelled_job_still_running_at_runware_counts_against_the_concurrency_cap(
    ledger: SpendLedger, db: Database
) -> None:
    jobs = JobStore(db)
    first, second = [await reserve(ledger, job(estimate=1), cap=2) for _ in range(2)]
    for job_id in (first, second):
        await jobs.transition(job_id, JobState.SUBMITTED)
        await jobs.transition(job_id, JobState.CANCELLED)  # the member cancelled; Runware still runs it
    with pytest.raises(ConcurrencyLimited) as err:
        await reserve(ledger, job(estimate=1), cap=2)
    assert (err.value.running, err.value.cap) == (2, 2)
    await ledger.release(first)  # Runware finished the first one: its hold closed
    await reserve(ledger, job(estimate=1), cap=2)


# -- what counts, and when -------------------------------------------------------------------------------------------


async def test_over_limit_says_which_limit_what_is_left_and_when_it_resets(ledger: SpendLedger) -> None:
    await reserve(ledger, job(estimate=usd_to_micros("1.50")))
    with pytest.raises(OverLimit) as caught:
        await reserve(ledger, job(estimate=CLIP * 2))
    err = caught.value
    assert (err.scope, err.period, err.is_default) == (Scope.MEMBER, Period.DAY, True)
    assert "your default daily limit" in error_text(err)
    assert err.left_micros == usd_to_micros("0.50")
    assert err.resets_at == datetime(2025, 2, 1, tzinfo=UTC)
    assert "$0.50 left of $2.00" in error_text(err) and "$0.56" in error_text(err)
    assert f"resets <t:{int(datetime(2025, 2, 1, tzinfo=UTC).timestamp())}:R>" in error_text(err)  # reader's own time


async def test_periods_are_calendar_windows_by_reservation_time(ledger: SpendLedger) -> None:
    assert await fill(ledger, job(), now=NOW) == 7
    late = NOW + timedelta(hours=1, minutes=59)
    assert await fill(ledger, job(), now=late) == 0  # still Jan 31
    next_day = datetime(2025, 2, 1, tzinfo=UTC)
    assert await fill(ledger, job(), now=next_day) == 7  # a new day and a new month
    month = Limit(Scope.MEMBER, ALICE, Period.MONTH, usd_to_micros(20), is_default=True)
    assert (await ledger.standing(month, guild_id=GUILD, now=next_day)).reserved_micros == 7 * CLIP
    assert (await ledger.standing(month, guild_id=GUILD, now=late)).reserved_micros == 7 * CLIP


async def test_settle_charges_the_reported_cost_and_frees_the_rest(ledger: SpendLedger, db: Database) -> None:
    ids = [await reserve(ledger, job()) for _ in range(7)]
    assert await fill(ledger, job()) == 0
    assert await ledger.settle(ids[0], usd_to_micros("0.10"))
    assert await fill(ledger, job()) == 0  # $0.18 freed is not enough for $0.28
    assert await ledger.settle(ids[1], 0)
    assert await fill(ledger, job()) == 1
    assert await ledger.settle(ids[2], None)  # no reported cost: charged the estimate
    assert await ledger.release(ids[3])
    assert not await ledger.settle(ids[3], 1)
    assert not await ledger.release(ids[2])
    rows = await db.fetchall(
        "SELECT job_id, status, charged_micros FROM ledger WHERE job_id IN (?, ?, ?, ?) ORDER BY job_id", ids[:4]
    )
    assert [tuple(r) for r in rows] == [
        (ids[0], "settled", usd_to_micros("0.10")),
        (ids[1], "settled", 0),
        (ids[2], "settled", CLIP),
        (ids[3], "released", 0),
    ]
    assert (await JobStore(db).get(ids[0])).cost_micros == usd_to_micros("0.10")  # type: ignore[union-attr]


async def test_second_settle_or_release_changes_nothing(ledger: SpendLedger, db: Database) -> None:
    a, b = await reserve(ledger, job()), await reserve(ledger, job())
    assert await ledger.settle(a, 100)
    assert await ledger.release(b)
    before = [tuple(r) for r in await db.fetchall("SELECT * FROM ledger ORDER BY job_id")]
    outcomes = await asyncio.gather(ledger.settle(a, 999), ledger.release(a), ledger.settle(b, 5), ledger.release(b))
    assert outcomes == [False] * 4
    assert [tuple(r) for r in await db.fetchall("SELECT * FROM ledger ORDER BY job_id")] == before


async def test_racing_settles_charge_once(ledger: SpendLedger) -> None:
    job_id = await reserve(ledger, job())
    outcomes = await asyncio.gather(*(ledger.settle(job_id, 111) for _ in range(10)), ledger.release(job_id))
    assert outcomes.count(True) == 1


async def test_dry_run_spend_is_kept_apart_from_real_spend(ledger: SpendLedger) -> None:
    assert await fill(ledger, job()) == 7
    assert await fill(ledger, job(dry_run=True)) == 7
    day = Limit(Scope.MEMBER, ALICE, Period.DAY, usd_to_micros(2), is_default=True)
    real = await ledger.standing(day, guild_id=GUILD, now=NOW)
    dry = await ledger.standing(day, guild_id=GUILD, now=NOW, dry_run=True)
    assert real.reserved_micros == dry.reserved_micros == 7 * CLIP
    assert real.left_micros == usd_to_micros("0.04")


async def test_role_standing_is_per_member(ledger: SpendLedger, guilds: GuildStore) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.ROLE, ROLE_A, Period.WEEK, usd_to_micros(1))
    await reserve(ledger, job(ALICE), roles=(ROLE_A,))
    role = Limit(Scope.ROLE, ROLE_A, Period.WEEK, usd_to_micros(1))
    standing = await ledger.standing(role, guild_id=GUILD, now=NOW, user_id=ALICE)
    assert (standing.used_micros, standing.left_micros) == (CLIP, usd_to_micros(1) - CLIP)
    assert standing.window_start == datetime(2025, 1, 27, tzinfo=UTC)  # Monday
    assert standing.resets_at == datetime(2025, 2, 3, tzinfo=UTC)
    assert (await ledger.standing(role, guild_id=GUILD, now=NOW, user_id=BOB)).used_micros == 0
    with pytest.raises(ValueError, match="user_id"):
        await ledger.standing(role, guild_id=GUILD, now=NOW)


# -- races ---------------------------------------------------------------------------------------------------------


async def test_200_simultaneous_reservations_fit_a_server_limit_exactly(
    ledger: SpendLedger, guilds: GuildStore, db: Database
) -> None:
    await guilds.set_limit(GUILD, MOD, Scope.SERVER, GUILD, Period.DAY, 10 * CLIP)
    members = [ALICE, BOB, CAROL, 4, 5]
    calls = [reserve(ledger, job(members[i % len(members)])) for i in range(200)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    accepted = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, OverLimit)]
    assert len(accepted) == 10 and len(refused) == 190
    assert all("the server's daily limit" in error_text(err) for err in refused)
    row = await db.fetchone("SELECT COUNT(*), SUM(held_micros) FROM ledger")
    assert row is not None and tuple(row) == (10, 10 * CLIP)


async def test_concurrency_cap_holds_under_a_race_and_frees_when_jobs_end(ledger: SpendLedger, db: Database) -> None:
    jobs = JobStore(db)
    big = replace(job(), estimate_micros=1)
    outcomes = await asyncio.gather(
        *(reserve(ledger, replace(big, task_uuid=f"cap-{i}"), cap=3) for i in range(50)), return_exceptions=True
    )
    accepted = [o for o in outcomes if isinstance(o, int)]
    assert len(accepted) == 3
    assert all(isinstance(o, ConcurrencyLimited) for o in outcomes if not isinstance(o, int))
    await reserve(ledger, job(BOB, estimate=1), cap=3)  # other members are not affected
    await reserve(ledger, job(ALICE, guild_id=GUILD + 1, estimate=1), cap=3)  # nor other servers
    await jobs.transition(accepted[0], JobState.SUBMITTED)
    with raises_saying(ConcurrencyLimited, "3 unfinished"):
        await reserve(ledger, big, cap=3)
    await jobs.transition(accepted[0], JobState.CANCELLED)  # still runs (and bills) at Runware: it counts
    await jobs.transition(accepted[1], JobState.FAILED)
    await reserve(ledger, replace(big, task_uuid="after-1"), cap=3)
    with pytest.raises(ConcurrencyLimited):
        await reserve(ledger, replace(big, task_uuid="after-x"), cap=3)
    await ledger.settle(accepted[0], 1)  # Runware finished it: its hold closed, so it no longer counts
    await reserve(ledger, replace(big, task_uuid="after-1b"), cap=3)
    await jobs.transition(accepted[2], JobState.FAILED)
    await reserve(ledger, replace(big, task_uuid="after-2"), cap=3)
    with pytest.raises(ConcurrencyLimited):
        await reserve(ledger, replace(big, task_uuid="after-3"), cap=3)


async def test_a_refused_reservation_writes_nothing(ledger: SpendLedger, db: Database) -> None:
    with pytest.raises(OverLimit):
        await reserve(ledger, job(estimate=usd_to_micros(3)))
    assert await db.fetchall("SELECT * FROM jobs") == []
    assert await db.fetchall("SELECT * FROM ledger") == []


# -- reports -------------------------------------------------------------------------------------------------------


async def test_report_totals_match_the_ledger(ledger: SpendLedger, db: Database) -> None:
    day2 = datetime(2025, 1, 2, 9, tzinfo=UTC)
    settle = {}
    for new, at in [
        (job(ALICE, GENERAL), day2),
        (job(ALICE, STUDIO), day2),
        (job(BOB, STUDIO), NOW),
        (job(CAROL, POOL, payer=Payer.POOL), NOW),
        (job(BOB, POOL, payer=Payer.POOL), day2),
        (job(0, 0, payer=Payer.OPERATOR), NOW),
        (job(ALICE, GENERAL, dry_run=True), NOW),
        (job(ALICE, GENERAL, guild_id=GUILD + 1), NOW),
        (job(BOB, GENERAL), datetime(2024, 12, 31, 23, 59, tzinfo=UTC)),  # last month
    ]:
        settle[await reserve(ledger, new, now=at)] = new
    ids = list(settle)
    await ledger.settle(ids[0], 100_000)
    await ledger.settle(ids[3], None)
    await ledger.release(ids[1])
    await ledger.settle(ids[5], 7)

    report = await ledger.report(GUILD, Period.MONTH, NOW)
    assert (report.window_start, report.window_end) == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 2, 1, tzinfo=UTC),
    )
    assert report.settled_micros == 100_000 + CLIP
    assert report.reserved_micros == 2 * CLIP  # Bob in the studio, Bob in the pool
    assert report.jobs == 4  # the released job spent nothing
    sums = await db.fetchone(
        "SELECT SUM(CASE status WHEN 'settled' THEN charged_micros WHEN 'held' THEN held_micros ELSE 0 END) "
        "FROM ledger WHERE guild_id = ? AND dry_run = 0 AND payer != 'operator' AND created_at >= '2025-01'",
        (GUILD,),
    )
    assert sums is not None and report.total_micros == sums[0]
    assert [(m.id, m.total_micros) for m in report.top_members] == [(BOB, CLIP), (ALICE, 100_000)]
    assert [(c.id, c.total_micros) for c in report.top_channels] == [(STUDIO, CLIP), (GENERAL, 100_000)]
    assert sorted((p.id, p.settled_micros, p.reserved_micros) for p in report.pools) == [(POOL, CLIP, CLIP)]
    assert sum(m.total_micros for m in report.top_members) + sum(p.total_micros for p in report.pools) == (
        report.total_micros
    )
    assert len(report.daily) == 31 and sum(v for _, v in report.daily) == report.total_micros
    assert dict(report.daily)[date(2025, 1, 2)] == 100_000 + CLIP
    assert (report.operator.settled_micros, report.operator.jobs) == (7, 1)

    dry = await ledger.report(GUILD, Period.MONTH, NOW, dry_run=True)
    assert (dry.reserved_micros, dry.jobs, dry.settled_micros) == (CLIP, 1, 0)
    today = await ledger.report(GUILD, Period.DAY, NOW)
    assert today.total_micros == 2 * CLIP  # Bob's studio hold and Carol's settled pool job
    assert today.daily == ((date(2025, 1, 31), 2 * CLIP),)
