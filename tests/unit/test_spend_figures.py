"""SpendFigures on both backends: reported per-clip costs, the operator's spend, spend per hour."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.models import JobState, Payer, Period, usd_to_micros
from bot.store.driver import Database
from bot.store.figures import SpendFigures
from bot.store.jobs import JobStore
from bot.store.ledger import SpendLedger
from tests.unit.test_ledger import GUILD, job

NOW = datetime(2025, 1, 31, 22, 30, tzinfo=UTC)


async def finished(ledger: SpendLedger, jobs: JobStore, *, clips: int, cost: int, at: datetime, **kw: object) -> int:
    """A job reserved at `at` that Runware finished with `clips` results costing `cost` in all."""
    new = replace(job(**kw), variations=clips)  # type: ignore[arg-type]
    created = await ledger.reserve(new, role_ids=(), concurrency_cap=None, now=at)
    assert await jobs.transition(created.id, JobState.SUBMITTED)
    for n in range(clips):
        await jobs.add_result(created.id, video_uuid=f"v{created.id}-{n}", video_url="u", seed=1, cost_micros=None)
    assert await jobs.transition(created.id, JobState.SUCCEEDED, cost_micros=cost)
    await ledger.settle(created.id, cost)
    return created.id


async def test_clip_costs_are_per_clip_newest_first_for_one_size_and_mode(db: Database) -> None:
    ledger, jobs, figures = SpendLedger(db, member_defaults={}, server_defaults={}), JobStore(db), SpendFigures(db)
    await finished(ledger, jobs, clips=2, cost=800_000, at=NOW)
    await finished(ledger, jobs, clips=1, cost=420_000, at=NOW)
    await finished(ledger, jobs, clips=1, cost=999_000, at=NOW, dry_run=True)  # simulated: not for live prices
    failed = await ledger.reserve(job(), role_ids=(), concurrency_cap=None, now=NOW)  # no cost reported
    assert await jobs.transition(failed.id, JobState.FAILED)
    assert await figures.clip_costs("768p", 6, False, 20) == [420_000, 400_000]
    assert await figures.clip_costs("768p", 6, False, 1) == [420_000]
    assert await figures.clip_costs("768p", 6, True, 20) == [999_000]
    assert await figures.clip_costs("1080p", 6, False, 20) == []


async def test_operator_spend_counts_every_operator_job_and_hourly_buckets_the_servers_spend(db: Database) -> None:
    ledger, jobs, figures = SpendLedger(db, member_defaults={}, server_defaults={}), JobStore(db), SpendFigures(db)
    await finished(ledger, jobs, clips=1, cost=300_000, at=NOW - timedelta(hours=2))
    await ledger.reserve(job(), role_ids=(), concurrency_cap=None, now=NOW)  # held: counts as reserved
    await ledger.reserve(job(0, 0, payer=Payer.OPERATOR, guild_id=0), role_ids=(), concurrency_cap=None, now=NOW)
    start, end = datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    operator = await figures.operator_spend(start, end, dry_run=False)
    assert (operator.settled_micros, operator.reserved_micros, operator.jobs) == (0, usd_to_micros("0.28"), 1)
    hours = await figures.hourly(GUILD, start, end, NOW, dry_run=False)
    assert len(hours) == 23 and hours[0][0] == start and hours[-1][0] == datetime(2025, 1, 31, 22, tzinfo=UTC)
    assert dict(hours)[datetime(2025, 1, 31, 20, tzinfo=UTC)] == 300_000
    assert dict(hours)[datetime(2025, 1, 31, 22, tzinfo=UTC)] == usd_to_micros("0.28")
    assert sum(v for _, v in hours) == (await ledger.report(GUILD, Period.DAY, NOW)).total_micros
