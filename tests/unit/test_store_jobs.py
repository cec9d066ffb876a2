"""JobStore: compare-and-set transitions, de-duplicated results and receipts, restart queries."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.models import FINAL_JOB_STATES, JOB_TRANSITIONS, JobState, Payer, Period, ResultState
from bot.store.driver import from_db_time
from bot.store.interface import Database
from bot.store.jobs import JobStore, NewJob
from bot.store.ledger import SpendLedger
from tests.helpers import new_job as make_new_job
from tests.helpers import open_test_database

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(db: Database, clock: Clock) -> JobStore:
    return JobStore(db, clock=clock)


@pytest.fixture
def ledger(db: Database) -> SpendLedger:
    return SpendLedger(db, member_defaults={}, server_defaults={})


def new_job(task_uuid: str, *, user_id: int = 3, guild_id: int = 1, **changes: object) -> NewJob:
    fields: dict[str, object] = {
        "channel_id": 20,
        "budget_channel_id": 20,
        "prompt": "waves at dusk",
        "variations": 2,
        "prompt_optimizer": True,
        "frame_count": 1,
        "params": {"image_uuids": ["img-1"], "safety_mode": "fast"},
        "estimate_micros": 560_000,
    }
    return make_new_job(task_uuid=task_uuid, guild_id=guild_id, user_id=user_id, **(fields | changes))


async def make(ledger: SpendLedger, task_uuid: str, **changes: object) -> int:
    job = await ledger.reserve(new_job(task_uuid, **changes), role_ids=(), concurrency_cap=None, now=NOW)
    return job.id


async def test_reserved_job_round_trips_every_field(store: JobStore, ledger: SpendLedger) -> None:
    parent = await make(ledger, "parent")
    job_id = await make(ledger, "child", parent_job_id=parent, thread_id=77, channel_id=21, dry_run=True)
    job = await store.get(job_id)
    assert job is not None
    assert job == await store.by_task_uuid("child")
    assert (job.task_uuid, job.guild_id, job.channel_id, job.budget_channel_id, job.user_id) == ("child", 1, 21, 20, 3)
    assert (job.payer, job.pool_channel_id, job.prompt, job.resolution, job.duration) == (
        Payer.MEMBER,
        None,
        "waves at dusk",
        "768p",
        6,
    )
    assert (job.variations, job.prompt_optimizer, job.frame_count, job.dry_run) == (2, True, 1, True)
    assert job.extra == {"image_uuids": ["img-1"], "safety_mode": "fast"}
    assert (job.state, job.estimate_micros, job.cost_micros, job.error) == (JobState.RESERVED, 560_000, None, None)
    assert (job.parent_job_id, job.thread_id, job.submit_attempts) == (parent, 77, 0)
    assert job.created_at == job.updated_at == NOW
    assert job.submitted_at is None and job.finished_at is None
    assert await store.get(9999) is None and await store.by_task_uuid("nope") is None


async def test_transitions_follow_the_table_and_stamp_times(store: JobStore, ledger: SpendLedger, clock: Clock) -> None:
    job_id = await make(ledger, "t")
    assert not await store.transition(job_id, JobState.SUCCEEDED)  # RESERVED -> SUCCEEDED is not a legal move
    clock.now = NOW + timedelta(seconds=5)
    assert await store.transition(job_id, JobState.SUBMITTED)
    assert not await store.transition(job_id, JobState.SUBMITTED)  # the second path loses
    clock.now = NOW + timedelta(seconds=60)
    assert await store.transition(job_id, JobState.SUCCEEDED, cost_micros=430_000)
    job = await store.get(job_id)
    assert job is not None
    assert job.state is JobState.SUCCEEDED and job.cost_micros == 430_000
    assert job.submitted_at == NOW + timedelta(seconds=5)
    assert job.finished_at == job.updated_at == NOW + timedelta(seconds=60)
    for to in JobState:  # final: nothing moves it any more
        assert not await store.transition(job_id, to)


@pytest.mark.parametrize("source", list(JobState))
async def test_every_pair_of_states_obeys_the_transition_table(
    source: JobState, store: JobStore, ledger: SpendLedger, db: Database
) -> None:
    for to in JobState:
        job_id = await make(ledger, f"{source}-{to}")
        await db.execute("UPDATE jobs SET state = ? WHERE id = ?", (str(source), job_id))
        moved = await store.transition(job_id, to, error="why")
        assert moved == (to in JOB_TRANSITIONS[source])
        job = await store.get(job_id)
        assert job is not None and job.state is (to if moved else source)
        assert (job.finished_at is not None) == (moved and to in FINAL_JOB_STATES)


async def test_racing_transitions_have_exactly_one_winner(store: JobStore, ledger: SpendLedger) -> None:
    job_id = await make(ledger, "race")
    assert await store.transition(job_id, JobState.SUBMITTED)
    outcomes = await asyncio.gather(
        *(store.transition(job_id, to) for to in [JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED] * 10)
    )
    assert outcomes.count(True) == 1


async def test_failure_keeps_the_error_and_cancel_is_not_final(store: JobStore, ledger: SpendLedger) -> None:
    a, b = await make(ledger, "a"), await make(ledger, "b")
    assert await store.transition(a, JobState.FAILED, error="Runware refused the last frame")
    job = await store.get(a)
    assert job is not None and job.error == "Runware refused the last frame" and job.finished_at is not None
    assert await store.transition(b, JobState.SUBMITTED)
    assert await store.transition(b, JobState.CANCELLED)
    job = await store.get(b)
    assert job is not None and job.finished_at is None
    assert await store.transition(b, JobState.SUCCEEDED, cost_micros=1)  # the bill still arrives


async def test_restart_queries(store: JobStore, ledger: SpendLedger) -> None:
    reserved = await make(ledger, "reserved")
    submitted = await make(ledger, "submitted")
    await store.transition(submitted, JobState.SUBMITTED)
    cancelled_open = await make(ledger, "cancelled-open")
    await store.transition(cancelled_open, JobState.SUBMITTED)
    await store.transition(cancelled_open, JobState.CANCELLED)
    cancelled_costed = await make(ledger, "cancelled-costed")
    await store.transition(cancelled_costed, JobState.CANCELLED)
    await ledger.settle(cancelled_costed, 100)  # Runware's bill arrived: no longer tracked
    done = await make(ledger, "done")
    await store.transition(done, JobState.SUBMITTED)
    await store.transition(done, JobState.SUCCEEDED)

    assert await store.tracked_task_uuids() == ["submitted", "cancelled-open"]
    assert [j.id for j in await store.unfinished()] == [reserved, submitted, cancelled_open]  # settled: done
    counts = await store.counts_by_state()
    assert counts == {"reserved": 1, "submitted": 1, "cancelled": 2, "succeeded": 1, "failed": 0, "expired": 0}

    # the lean queries of the sweep, recovery and reconciliation pick the same jobs as the full ones
    tracked = await store.tracked()
    assert [t.task_uuid for t in tracked] == await store.tracked_task_uuids()
    unfinished = {j.id: j for j in await store.unfinished()}
    for row in tracked:
        job = unfinished[row.id]
        assert (row.state, row.variations, row.dry_run, row.status_message_id) == (
            job.state,
            job.variations,
            job.dry_run,
            job.status_message_id,
        )
        assert from_db_time(row.started_at) == (job.submitted_at or job.created_at)
    assert [j.id for j in await store.reserved()] == [j.id for j in unfinished.values() if j.state is JobState.RESERVED]
    assert await store.final_with_money_held() == [done]  # its settle never ran
    await ledger.settle(done, 5)
    assert await store.final_with_money_held() == []


async def test_get_many_reads_jobs_in_chunks_and_skips_missing_ids(store: JobStore, ledger: SpendLedger) -> None:
    ids = [await make(ledger, f"m{i}") for i in range(3)]
    await store.set_params(ids[1], {"task": {"taskUUID": "m1"}})
    await store.set_status_message(ids[2], channel_id=5, message_id=6)
    many = await store.get_many([ids[2], 999, ids[0], ids[1], ids[0]])
    assert set(many) == set(ids)
    for job_id in ids:
        assert many[job_id] == await store.get(job_id)
    assert await store.get_many([]) == {}


async def test_get_many_takes_more_ids_than_one_query_binds(
    store: JobStore, ledger: SpendLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.store.jobs._IDS_PER_QUERY", 2)
    ids = [await make(ledger, f"c{i}") for i in range(5)]
    assert sorted(await store.get_many(ids)) == ids


async def test_recent_for_member_is_newest_first_and_per_guild(store: JobStore, ledger: SpendLedger) -> None:
    ids = [await make(ledger, f"r{i}") for i in range(4)]
    await make(ledger, "other-member", user_id=4)
    await make(ledger, "other-guild", guild_id=2)
    assert [j.id for j in await store.recent_for_member(1, 3, limit=3)] == ids[::-1][:3]


async def test_status_message_thread_and_params(store: JobStore, ledger: SpendLedger) -> None:
    job_id = await make(ledger, "s")
    await store.set_status_message(job_id, channel_id=20, message_id=555)
    await store.set_thread(job_id, 66)
    job = await store.get(job_id)
    assert job is not None
    await store.set_params(job_id, {**job.params_dict(), "task": {"taskUUID": "s"}})
    job = await store.get(job_id)
    assert job is not None
    assert (job.status_channel_id, job.status_message_id, job.thread_id) == (20, 555, 66)
    assert job.extra["task"] == {"taskUUID": "s"} and job.extra["safety_mode"] == "fast"


async def test_results_are_recorded_once(store: JobStore, ledger: SpendLedger) -> None:
    job_id = await make(ledger, "res")
    first = await asyncio.gather(
        *(
            store.add_result(job_id, video_uuid="v1", video_url="https://cdn/v1.mp4", seed=42, cost_micros=280_000)
            for _ in range(5)
        )
    )
    assert first.count(True) == 1
    assert await store.add_result(job_id, video_uuid="v2", video_url="https://cdn/v2.mp4", seed=None, cost_micros=None)
    results = await store.results(job_id)
    assert [(r.video_uuid, r.seed, r.cost_micros, r.state) for r in results] == [
        ("v1", 42, 280_000, ResultState.PENDING),
        ("v2", None, None, ResultState.PENDING),
    ]
    assert await store.get_result(results[0].id) == results[0]
    assert await store.get_result(9999) is None


async def test_result_delivery_is_compare_and_set(store: JobStore, ledger: SpendLedger, clock: Clock) -> None:
    job_id = await make(ledger, "d")
    await store.add_result(job_id, video_uuid="v", video_url="u", seed=1, cost_micros=1)
    (result,) = await store.results(job_id)
    assert not await store.result_transition(result.id, ResultState.DELIVERED)  # must be DELIVERING first
    wins = await asyncio.gather(*(store.result_transition(result.id, ResultState.DELIVERING) for _ in range(3)))
    assert wins.count(True) == 1
    assert await store.undelivered_results_for(job_id) == await store.undelivered_results()
    clock.now = NOW + timedelta(minutes=2)
    assert await store.result_transition(result.id, ResultState.DELIVERED, message_id=900, channel_id=20)
    assert not await store.result_transition(result.id, ResultState.DELIVERED, message_id=901)
    done = await store.get_result(result.id)
    assert done is not None
    assert (done.state, done.message_id, done.channel_id, done.attempts) == (ResultState.DELIVERED, 900, 20, 1)
    assert done.delivered_at == NOW + timedelta(minutes=2)
    assert await store.undelivered_results() == []


async def test_undelivered_results_skip_cancelled_jobs(store: JobStore, ledger: SpendLedger) -> None:
    live, cancelled = await make(ledger, "live"), await make(ledger, "cancelled")
    for job_id in (live, cancelled):
        await store.transition(job_id, JobState.SUBMITTED)
        await store.add_result(job_id, video_uuid="v", video_url="u", seed=None, cost_micros=None)
    await store.transition(cancelled, JobState.CANCELLED)
    assert [r.job_id for r in await store.undelivered_results()] == [live]


async def test_webhook_receipts_are_deduplicated(store: JobStore) -> None:
    outcomes = await asyncio.gather(*(store.record_receipt("task-1:v1", "task-1") for _ in range(4)))
    assert outcomes.count(True) == 1
    assert await store.record_receipt("task-1:v2", "task-1")


async def test_key_value(store: JobStore) -> None:
    assert await store.get_kv("webhook_secret") is None
    await store.set_kv("webhook_secret", "a")
    await store.set_kv("webhook_secret", "b")
    assert await store.get_kv("webhook_secret") == "b"
    assert await store.set_kv_if_absent("other", "first") == "first"
    assert await store.set_kv_if_absent("other", "second") == "first"


async def test_ledger_rows_survive_restart_with_jobs(db_target: Path | str) -> None:
    db = open_test_database(db_target)
    async with contextlib.AsyncExitStack() as stack:
        await db.open()
        stack.push_async_callback(db.close)
        job_id = await make(SpendLedger(db, member_defaults={}, server_defaults={}), "keep")
        await JobStore(db).transition(job_id, JobState.SUBMITTED)
    db = open_test_database(db_target)
    await db.open()
    try:
        assert await JobStore(db).tracked_task_uuids() == ["keep"]
        assert await SpendLedger(db, member_defaults={Period.DAY: 1}, server_defaults={}).held_job_ids() == [job_id]
    finally:
        await db.close()
