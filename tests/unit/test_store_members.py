"""The store's parts of members' features: offers taken once (confirm-above), and the usual time per size."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.core.models import JobState
from bot.store.driver import to_db_time
from bot.store.interface import Database
from bot.store.jobs import JobStore
from bot.store.ledger import SpendLedger
from bot.store.offers import OfferOutcome, OfferStore
from tests.unit.test_store_jobs import NOW, Clock, make


@pytest.fixture
def db(database: Database) -> Database:
    """Both backends (tests/conftest.py: store_backend)."""
    return database


async def offer(store: OfferStore, *, user_id: int = 7, minutes: int = 5) -> int:
    return await store.create(
        guild_id=1, user_id=user_id, channel_id=2, estimate_micros=450_000, plan_json="{}",
        expires_at=NOW + timedelta(minutes=minutes),
    )  # fmt: skip


async def test_an_offer_is_taken_once_even_by_concurrent_starts(db: Database) -> None:
    store = OfferStore(db, clock=Clock(NOW))
    offer_id = await offer(store)
    outcomes = await asyncio.gather(*(store.take(offer_id, 7) for _ in range(5)))
    assert sorted(o for o, _ in outcomes) == sorted([OfferOutcome.TAKEN] + [OfferOutcome.USED] * 4)
    assert (await store.take(offer_id, 7, to="cancelled"))[0] is OfferOutcome.USED


async def test_an_offer_can_not_be_started_after_it_expires_nor_by_someone_else(db: Database) -> None:
    clock = Clock(NOW)
    store = OfferStore(db, clock=clock)
    offer_id = await offer(store)
    assert (await store.take(offer_id, 8))[0] is OfferOutcome.NOT_YOURS
    clock.now = NOW + timedelta(minutes=5)
    assert (await store.take(offer_id, 7))[0] is OfferOutcome.EXPIRED
    assert (await store.take(offer_id, 7, to="cancelled"))[0] is OfferOutcome.TAKEN  # cancelling is always fine
    assert (await store.take(999, 7))[0] is OfferOutcome.MISSING


async def test_expired_open_offers_are_dropped_as_new_ones_come(db: Database) -> None:
    clock = Clock(NOW)
    store = OfferStore(db, clock=clock)
    await offer(store, minutes=1)
    clock.now = NOW + timedelta(minutes=2)
    await offer(store)
    row = await db.fetchone("SELECT COUNT(*) FROM offers")
    assert row is not None and row[0] == 1


async def finished(db: Database, ledger: SpendLedger, n: int, minutes: float, **changes: object) -> int:
    job_id = await make(ledger, f"task-{n}", **changes)
    start = NOW + timedelta(hours=n)
    await db.execute(
        "UPDATE jobs SET state = ?, submitted_at = ?, finished_at = ? WHERE id = ?",
        (str(JobState.SUCCEEDED), to_db_time(start), to_db_time(start + timedelta(minutes=minutes)), job_id),
    )
    return job_id


async def test_the_usual_time_is_the_median_of_the_last_50_succeeded_jobs_of_that_size_from_5_on(
    db: Database,
) -> None:
    store = JobStore(db, clock=Clock(NOW))
    ledger = SpendLedger(db, member_defaults={}, server_defaults={})
    for n, minutes in enumerate((2, 3, 3, 4)):
        await finished(db, ledger, n, minutes)
    await finished(db, ledger, 90, 1, duration=10)  # another size
    await finished(db, ledger, 91, 1, dry_run=True)  # simulated
    assert await store.usual_seconds("768p", 6) is None, "4 of that size: not enough yet"
    await finished(db, ledger, 4, 9)
    assert await store.usual_seconds("768p", 6) == 180.0
    for n in range(5, 60):  # 55 newer jobs of 10 minutes: only the latest 50 count
        await finished(db, ledger, n, 10)
    assert await store.usual_seconds("768p", 6) == 600.0
    assert await store.usual_seconds("1080p", 6) is None
