"""The tracker against Runware's odd answers and slow clip hosts: the real engine, the simulator, real files."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.core.clips import fetch_clip
from bot.core.engine import Engine
from bot.core.models import ClipResult, Job, JobState
from bot.core.service import Requester, VideoOptions
from bot.core.sink import Delivered
from bot.simulator.server import RunwareSimulator
from tests.helpers import RecordingSink, make_settings

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))
GUARD = 60.0  # seconds: only so a regression fails the test instead of hanging it


@pytest.fixture
async def engine(sim: RunwareSimulator, db_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink]]:
    settings = make_settings(db_path, sim.base_url, limits={"concurrent_per_member": 10})
    eng = Engine(settings)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink
    await eng.close()


async def charged(eng: Engine, job_id: int) -> tuple[str, int | None]:
    row = await eng.db.fetchone("SELECT status, charged_micros FROM ledger WHERE job_id = ?", (job_id,))
    assert row is not None
    return str(row[0]), row[1]


@pytest.mark.parametrize("cost", [-0.28, math.nan, math.inf, 1e30], ids=["negative", "nan", "infinity", "1e30"])
async def test_an_impossible_cost_from_get_response_skips_only_its_own_job(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator, cost: float
) -> None:
    eng, sink = engine
    bad = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
    good = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    sim.faults.costs_by_task[bad.task_uuid] = cost
    sim.finish(bad.task_uuid)
    sim.finish(good.task_uuid)
    await eng.tracker.sweep_once()  # must not raise: one job's bad data never stops the sweep
    await eng.tracker.sweep_once()
    done = await eng.jobs.get(good.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.cost_micros == 280_000
    assert [job_id for job_id, _, _ in sink.delivered] == [good.id]
    waiting = await eng.jobs.get(bad.id)
    assert waiting is not None and waiting.state is JobState.SUBMITTED and await eng.jobs.results(bad.id) == []
    assert (await charged(eng, bad.id))[0] == "held"


async def test_start_up_reconcile_survives_a_row_with_an_impossible_cost(sim: RunwareSimulator, db_path: Path) -> None:
    settings = make_settings(db_path, sim.base_url)
    first = Engine(settings)
    await first.start(RecordingSink())
    bad = await first.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
    good = await first.service.create(VideoOptions(prompt="a glass city"), ALICE)
    # As an earlier build left them: succeeded, money still held, one with a negative cost on record.
    await first.db.execute("UPDATE jobs SET state = 'succeeded', cost_micros = -280000 WHERE id = ?", (bad.id,))
    await first.db.execute("UPDATE jobs SET state = 'succeeded', cost_micros = 280000 WHERE id = ?", (good.id,))
    await first.close()

    second = Engine(settings)
    await second.start(RecordingSink())
    try:
        await second.start_tracking()  # the start-up reconcile must not die on the bad row
        assert await charged(second, bad.id) == ("settled", bad.estimate_micros)  # the estimate, not -$0.28
        assert await charged(second, good.id) == ("settled", 280_000)
        assert second.tracker.loop.running
    finally:
        await second.close()


async def test_a_stored_impossible_cost_settles_at_the_estimate_without_raising(
    engine: tuple[Engine, RecordingSink], sim: RunwareSimulator
) -> None:
    eng, sink = engine
    job = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
    url = f"{sim.origin}/video/0000.mp4"
    await eng.jobs.add_result(job.id, video_uuid="v1", video_url=url, seed=1, cost_micros=-280_000)  # an old row
    await eng.tracker.check_job(job.id)
    await eng.tracker.delivery_pool.idle()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert await charged(eng, job.id) == ("settled", job.estimate_micros)
    assert len(sink.delivered) == 1


class DownloadingSink(RecordingSink):
    """Downloads each clip as the Discord delivery does, then records it; `posted[job_id]` is set when done."""

    def __init__(self, eng: Engine) -> None:
        super().__init__()
        self._eng = eng
        self.posted: dict[int, asyncio.Event] = {}

    def event(self, job_id: int) -> asyncio.Event:
        return self.posted.setdefault(job_id, asyncio.Event())

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        for result in results:
            await fetch_clip(
                self._eng.runware.http,
                result.video_url,
                max_bytes=10_000_000,
                timeout=self._eng.settings.delivery.download_timeout,
                hosts=self._eng.clip_hosts,
            )
        out = await super().deliver(job, results, redelivery=redelivery)
        self.event(job.id).set()
        return out


async def test_a_slow_clip_host_delays_only_its_own_job(sim: RunwareSimulator, db_path: Path) -> None:
    settings = make_settings(db_path, sim.base_url, delivery={"download_timeout": 600})
    eng = Engine(settings)
    sink = DownloadingSink(eng)
    await eng.start(sink)
    try:
        slow = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
        fast = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
        sim.faults.slow_clips[slow.task_uuid] = 300.0  # trickled over five minutes
        sim.finish(slow.task_uuid)
        sim.finish(fast.task_uuid)
        await eng.start_tracking()  # the first poll round runs now
        await asyncio.wait_for(sink.event(fast.id).wait(), GUARD)
        assert not sink.event(slow.id).is_set()  # still trickling in
        await asyncio.wait_for(eng.tracker.poll_once(), GUARD)  # polling goes on meanwhile
        assert not sink.event(slow.id).is_set()
        sim.faults.slow_clips.clear()  # the host recovers: the slow job finishes too
        await asyncio.wait_for(sink.event(slow.id).wait(), GUARD)
        assert sorted(job_id for job_id, _, _ in sink.delivered) == [slow.id, fast.id]
    finally:
        await eng.close()
