"""Leases between processes (SPEC §10), on one database: two "processes" here are two sets of service, tracker and
leases with their own owner ids, sharing the engine's store and the simulator; time moves by hand.

The two-OS-process version of these journeys, on PostgreSQL, is tests/e2e/test_two_processes.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.engine import Engine
from bot.core.models import ClipResult, ImageInput, Job, JobState, ResultState
from bot.core.recovery import Recovery
from bot.core.service import Requester, VideoOptions, VideoService
from bot.core.sink import Delivered
from bot.core.tracker import JobTracker
from bot.runware.models import VideoInferenceTask
from bot.simulator.server import RunwareSimulator
from bot.store.driver import to_db_time
from bot.store.leases import Leases
from tests.fakes.images import png_bytes
from tests.helpers import Clock, RecordingSink, make_settings, open_test_database

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))
LEASE = 30.0


@dataclass
class Proc:
    """One process's share of the work: its own owner id, claims, service, tracker and sink."""

    leases: Leases
    service: VideoService
    tracker: JobTracker
    recovery: Recovery
    sink: RecordingSink


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(sim: RunwareSimulator, db_target: Path | str, clock: Clock) -> AsyncIterator[Engine]:
    settings = make_settings(
        db_target,
        sim.base_url,
        runware={"max_wait": 600},
        database={"lease_seconds": LEASE},
        limits={"concurrent_per_member": 20, "member_day_usd": 100, "member_month_usd": 100},
    )
    eng = Engine(settings, clock=clock)
    await eng.start(RecordingSink())
    yield eng
    await eng.close()


def make_proc(eng: Engine, clock: Clock, owner: str) -> Proc:
    leases = Leases(eng.db, seconds=LEASE, owner=owner, shared=True, clock=clock)
    sink = RecordingSink()
    tracker = JobTracker(
        jobs=eng.jobs,
        ledger=eng.ledger,
        runware=eng.runware,
        poll_interval=3600,
        max_wait=600,
        sink=sink,
        clock=clock,
        leases=leases,
    )
    service = VideoService(
        settings=eng.settings,
        jobs=eng.jobs,
        ledger=eng.ledger,
        guilds=eng.guilds,
        runware=eng.runware,
        tracker=tracker,
        clock=clock,
        leases=leases,
    )
    recovery = Recovery(
        settings=eng.settings,
        jobs=eng.jobs,
        runware=eng.runware,
        service=service,
        tracker=tracker,
        clock=clock,
        leases=leases,
    )
    tracker.before_sweep = recovery.recover_reserved
    tracker.in_flight = service.in_flight
    return Proc(leases, service, tracker, recovery, sink)


@pytest.fixture
async def a(engine: Engine, clock: Clock) -> AsyncIterator[Proc]:
    p = make_proc(engine, clock, "process-a")
    yield p
    await p.tracker.delivery_pool.stop(0)


@pytest.fixture
async def b(engine: Engine, clock: Clock) -> AsyncIterator[Proc]:
    p = make_proc(engine, clock, "process-b")
    yield p
    await p.tracker.delivery_pool.stop(0)


def polled(sim: RunwareSimulator) -> list[str]:
    """Every taskUUID asked about with getResponse, in order (one entry per ask)."""
    return [
        str(task["taskUUID"])
        for req in sim.requests
        for task in req.tasks
        if task.get("taskType") == "getResponse" and task.get("taskUUID")
    ]


async def test_each_job_is_polled_by_one_process_per_sweep_until_its_lease_lapses(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator, clock: Clock
) -> None:
    jobs = [await a.service.create(VideoOptions(prompt=f"a kite number {n}"), ALICE) for n in range(3)]
    uuids = sorted(j.task_uuid for j in jobs)

    await a.tracker.sweep_once()
    await b.tracker.sweep_once()
    assert sorted(polled(sim)) == uuids  # all three once, by their owner; the other process asked about none

    clock.now += timedelta(seconds=LEASE / 2)
    await a.leases.renew()  # the owner lives and renews
    clock.now += timedelta(seconds=LEASE * 0.75)
    before = len(polled(sim))
    await b.tracker.sweep_once()
    assert len(polled(sim)) == before  # renewed: still A's

    clock.now += timedelta(seconds=LEASE + 1)  # A died: its leases lapse
    await b.tracker.sweep_once()
    await a.tracker.sweep_once()  # a late sweep of A finds them B's now
    assert sorted(polled(sim)[before:]) == uuids
    for job in jobs:
        assert (await b.leases.holder("jobs", job.id))[0] == "process-b"


async def test_a_dead_process_reserved_job_is_submitted_once_by_the_other_when_its_lease_lapses(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator, clock: Clock
) -> None:
    plan = await a.service.plan(VideoOptions(prompt="a job whose process died before the submit"), ALICE)
    job = await a.service.reserve(plan)  # A holds it, and the task is stored
    for _ in range(3):  # A is alive (setting up a thread, uploading frames...) and renews
        clock.now += timedelta(seconds=LEASE * 0.8)
        await a.leases.renew()
    clock.now += timedelta(seconds=LEASE * 0.8)  # long past the 60 s grace, but A's lease is live: B keeps off
    await b.recovery.recover_reserved()
    assert sim.submit_count() == 0

    clock.now += timedelta(seconds=LEASE + 1)  # A is gone
    await b.recovery.recover_reserved()
    assert sim.submit_count(job.task_uuid) == 1
    after = await engine.jobs.get(job.id)
    assert after is not None and after.state is JobState.SUBMITTED

    late = await a.service.submit(job, plan)  # A was only frozen: it wakes up and carries on
    assert late.state is JobState.SUBMITTED
    assert sim.submit_count(job.task_uuid) == 1


async def test_a_job_runware_acknowledged_before_its_process_died_is_taken_over_without_a_second_submit(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator, clock: Clock
) -> None:
    plan = await a.service.plan(VideoOptions(prompt="acknowledged, then the process died"), ALICE)
    job = await a.service.reserve(plan)
    task = job.params_dict()["task"]
    await engine.runware.submit(VideoInferenceTask.model_validate(task))  # A's submit, then SIGKILL
    sim.finish(job.task_uuid)

    await b.tracker.sweep_once()  # A's lease is live: nothing happens
    assert (await engine.jobs.get(job.id)).state is JobState.RESERVED  # type: ignore[union-attr]

    clock.now += timedelta(seconds=LEASE + 1)
    await b.tracker.sweep_once()  # recovery finds it at Runware; the same sweep polls it and posts the clip
    await b.tracker.sweep_once()
    done = await engine.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert sim.submit_count() == 1
    assert [d[0] for d in b.sink.delivered] == [job.id]
    assert a.sink.delivered == []
    assert await engine.ledger.held_job_ids() == []


class BlockingSink(RecordingSink):
    """Posts only when let go, like a slow upload; or dies mid-post (the process was killed)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.go = asyncio.Event()

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        self.entered.set()
        await self.go.wait()
        return await super().deliver(job, results, redelivery=redelivery)


async def deliver_now(p: Proc) -> None:
    """Hand leftovers to the process's delivery pool and wait for it."""
    await p.tracker.deliver_leftovers()
    await p.tracker.delivery_pool.idle()


async def finished_job(engine: Engine, p: Proc, sim: RunwareSimulator) -> Job:
    job = await p.service.create(VideoOptions(prompt="a clip to post once"), ALICE)
    sim.finish(job.task_uuid)
    return job


async def test_a_clip_being_posted_by_one_process_is_not_posted_by_the_other(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator
) -> None:
    slow = BlockingSink()
    a.tracker.sink = slow
    job = await finished_job(engine, a, sim)
    posting = asyncio.create_task(a.tracker.sweep_once())  # polls, finishes, starts posting
    await asyncio.wait_for(slow.entered.wait(), 5)

    await b.tracker.sweep_once()  # sees the result mid-delivery, held by A
    await deliver_now(b)
    assert b.sink.delivered == []

    slow.go.set()
    await asyncio.wait_for(posting, 5)
    assert [d[0] for d in slow.delivered] == [job.id]
    [result] = await engine.jobs.results(job.id)
    assert result.state is ResultState.DELIVERED
    await deliver_now(b)
    assert b.sink.delivered == []


async def test_a_clip_whose_poster_died_is_posted_by_the_other_process_as_a_redelivery(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator, clock: Clock
) -> None:
    slow = BlockingSink()
    a.tracker.sink = slow
    job = await finished_job(engine, a, sim)
    posting = asyncio.create_task(a.tracker.sweep_once())
    await asyncio.wait_for(slow.entered.wait(), 5)
    await a.tracker.delivery_pool.stop(0)  # A is killed mid-post: the result stays "delivering" under A's lease
    posting.cancel()
    await asyncio.gather(posting, return_exceptions=True)

    await deliver_now(b)
    assert b.sink.delivered == []
    clock.now += timedelta(seconds=LEASE + 1)
    await deliver_now(b)
    [result] = await engine.jobs.results(job.id)
    # B checks the channel first (redelivery=True): A may have posted before it died; the nonce backs that up.
    assert b.sink.delivered == [(job.id, [result.id], True)]
    assert result.state is ResultState.DELIVERED


async def test_a_clean_stop_hands_its_leases_over_and_only_a_sqlite_start_frees_leases_left_by_a_dead_process(
    sim: RunwareSimulator, db_target: Path | str, clock: Clock
) -> None:
    settings = make_settings(db_target, sim.base_url, database={"lease_seconds": LEASE})
    first = Engine(settings, clock=clock)
    await first.start(RecordingSink())
    job = await first.service.create(VideoOptions(prompt="held by the first process"), ALICE)
    assert (await first.leases.holder("jobs", job.id))[0] == first.leases.owner
    await first.close()  # a clean stop: released, so another process may take it at once

    second = Engine(settings, clock=clock)
    await second.start(RecordingSink())
    try:
        assert await second.leases.holder("jobs", job.id) == (None, None)
        other = Leases(second.db, seconds=LEASE, owner="killed-process", shared=True, clock=clock)
        assert await other.claim_jobs([job.id]) == {job.id}
    finally:
        await second.close()

    third = Engine(settings, clock=clock)
    await third.start(RecordingSink())
    await third.start_tracking()  # a bot's start: recovery, then a first sweep
    try:
        if isinstance(db_target, str):  # PostgreSQL: the killed process's lease stands until it lapses
            assert (await third.leases.holder("jobs", job.id))[0] == "killed-process"
            assert await third.leases.claim_jobs([job.id]) == set()
            clock.now += timedelta(seconds=LEASE + 1)
            assert await third.leases.claim_jobs([job.id]) == {job.id}
        else:  # SQLite serves one process: whoever held a lease before this start is gone, so this one polls it
            assert (await third.leases.holder("jobs", job.id))[0] in (None, third.leases.owner)
    finally:
        await third.close()


async def test_claims_take_free_lapsed_or_own_leases_of_unfinished_work_only(engine: Engine, clock: Clock) -> None:
    a = Leases(engine.db, seconds=LEASE, owner="a", shared=True, clock=clock)
    b = Leases(engine.db, seconds=LEASE, owner="b", shared=True, clock=clock)
    plan = await engine.service.plan(VideoOptions(prompt="claimed"), ALICE)
    young = await engine.service.reserve(plan)
    # As if its row was just written by another process and not yet leased:
    await engine.db.execute("UPDATE job_leases SET owner = NULL, until = NULL WHERE job_id = ?", (young.id,))
    # A job that never had a lease and is younger than the grace may be another process's, a moment old.
    assert await b.claim_jobs([young.id], unleased_before=clock() - timedelta(seconds=LEASE)) == set()
    assert await a.claim_jobs([young.id]) == {young.id}
    assert await b.claim_jobs([young.id]) == set()
    assert await a.claim_jobs([young.id]) == {young.id}  # its own live lease counts as held
    clock.now += timedelta(seconds=LEASE + 1)
    assert await b.claim_jobs([young.id]) == {young.id}
    assert await engine.jobs.transition(young.id, JobState.FAILED, error="stopped")
    clock.now += timedelta(seconds=LEASE + 1)
    assert await a.claim_jobs([young.id]) == set()  # finished work is nobody's to claim


async def test_a_job_is_written_already_claimed_by_the_process_that_reserves_it(
    a: Proc, b: Proc, engine: Engine, clock: Clock
) -> None:
    """The lease is part of the reservation's transaction: no moment where the new row is free for another process."""
    plan = await a.service.plan(VideoOptions(prompt="mine from the start"), ALICE)
    job = await a.service.reserve(plan)
    assert await a.leases.holder("jobs", job.id) == ("process-a", clock() + timedelta(seconds=LEASE))
    assert await b.leases.claim_jobs([job.id]) == set()
    assert await a.leases.claim_jobs([job.id]) == {job.id}
    live, lapsed = to_db_time(clock() + timedelta(seconds=1)), to_db_time(clock() - timedelta(seconds=1))
    rows = [(1, "process-a", live), (2, "process-a", lapsed), (3, "process-b", live), (4, "process-a", None)]
    assert a.leases.still_held(rows) == {1}  # what a sweep need not claim again


async def test_a_released_job_is_free_at_once_even_when_young(engine: Engine, clock: Clock) -> None:
    """A clean stop releases its leases: the young job is not mistaken for one another process is reserving."""
    plan = await engine.service.plan(VideoOptions(prompt="released"), ALICE)
    job = await engine.service.reserve(plan)
    await engine.leases.release_all()
    b = Leases(engine.db, seconds=LEASE, owner="b", shared=True, clock=clock)
    assert await b.claim_jobs([job.id], unleased_before=clock() - timedelta(seconds=LEASE)) == {job.id}


async def test_concurrent_claims_from_two_connections_split_the_jobs_without_errors(
    engine: Engine, db_target: Path | str, clock: Clock
) -> None:
    plan = await engine.service.plan(VideoOptions(prompt="claimed by exactly one"), ALICE)
    ids = [(await engine.service.reserve(plan)).id for _ in range(10)]
    await engine.leases.release_all()
    other_db = open_test_database(db_target)  # a second connection (pool), as another process has
    await other_db.open()
    try:
        a = Leases(engine.db, seconds=LEASE, owner="a", shared=True, clock=clock)
        b = Leases(other_db, seconds=LEASE, owner="b", shared=True, clock=clock)
        rounds = [(a if n % 2 else b).claim_jobs(ids[n % 3 :] + ids[: n % 3]) for n in range(20)]
        claimed = await asyncio.gather(*rounds)
    finally:
        await other_db.close()
    by_a = set().union(*claimed[1::2])
    by_b = set().union(*claimed[0::2])
    assert by_a.isdisjoint(by_b) and by_a | by_b == set(ids)


async def test_a_process_never_fails_its_own_job_being_set_up_before_the_grace_however_short_its_lease(
    engine: Engine, a: Proc, b: Proc, clock: Clock
) -> None:
    frame = ImageInput(filename="f.png", data=png_bytes(64, 64), mime="image/png", width=64, height=64)
    plan = await a.service.plan(VideoOptions(prompt="frames still uploading", first_frame=frame), ALICE)
    job = await a.service.reserve(plan)  # no task stored until the frames are at Runware
    clock.now += timedelta(seconds=LEASE + 1)  # longer than a lease, shorter than the 60 s grace
    await a.recovery.recover_reserved()
    assert (await engine.jobs.get(job.id)).state is JobState.RESERVED  # type: ignore[union-attr]
    await b.recovery.recover_reserved()  # but if A is gone (its lease lapsed), B finishes it: never sent, released
    failed = await engine.jobs.get(job.id)
    assert failed is not None and failed.state is JobState.FAILED
    assert await engine.ledger.held_job_ids() == []


async def test_an_overdue_job_is_expired_by_the_process_holding_it_and_by_another_only_once_it_is_let_go(
    engine: Engine, a: Proc, b: Proc, sim: RunwareSimulator, clock: Clock
) -> None:
    job = await a.service.create(VideoOptions(prompt="never finishes"), ALICE)
    clock.now += timedelta(seconds=601)  # past max_wait (600 s here)
    await a.leases.renew()  # A is alive
    await b.tracker.sweep_once()
    still = await engine.jobs.get(job.id)
    assert still is not None and still.state is JobState.SUBMITTED and b.sink.failed == []

    clock.now += timedelta(seconds=LEASE + 1)  # A died
    await b.tracker.sweep_once()
    await a.tracker.sweep_once()  # a late A finds it gone
    expired = await engine.jobs.get(job.id)
    assert expired is not None and expired.state is JobState.EXPIRED
    assert [f[0] for f in b.sink.failed] == [job.id] and a.sink.failed == []
    assert await engine.ledger.held_job_ids() == []
