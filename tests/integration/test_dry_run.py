"""Dry run against a real Engine: simulated spend kept apart, and jobs never cross between dry run and live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bot.core.engine
from bot.core.engine import Engine
from bot.core.models import JobState, Period
from bot.core.plans import Requester, VideoOptions
from bot.simulator.server import RunwareSimulator
from tests.helpers import RecordingSink, make_settings

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))
EngineIn = Callable[[bool], AbstractAsyncContextManager[tuple[Engine, RecordingSink]]]


@pytest.fixture(autouse=True)
def _instant_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.core.engine, "DRY_RUN_PROCESSING_SECONDS", 0.0)


@pytest.fixture
def engine_in(db_target: Path | str, sim: RunwareSimulator) -> EngineIn:
    """engine_in(dry_run): a started Engine on the test's database; live mode talks to `sim` as "Runware"."""

    @asynccontextmanager
    async def start(dry_run: bool) -> AsyncIterator[tuple[Engine, RecordingSink]]:
        eng = Engine(make_settings(db_target, sim.base_url, dry_run=dry_run))
        sink = RecordingSink()
        await eng.start(sink)
        try:
            yield eng, sink
        finally:
            await eng.close()

    return start


def video_submits(sim: RunwareSimulator) -> int:
    return sum(1 for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference")


async def test_dry_run_spend_is_counted_apart_and_kept_out_of_real_reports(engine_in: EngineIn) -> None:
    async with engine_in(True) as (eng, sink):
        assert eng.simulator is not None
        job = await eng.service.create(VideoOptions(prompt="a paper boat in a rain gutter"), ALICE)
        assert job.dry_run
        await eng.tracker.sweep_once()
        done = await eng.jobs.get(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED and done.cost_micros == 280_000
        assert len(sink.delivered) == 1
        assert eng.metrics.value("hailuo_spend_micros_total", mode="dry_run") == 280_000
        assert eng.metrics.value("hailuo_spend_micros_total", mode="real") == 0
        now = datetime.now(UTC)
        real = await eng.ledger.report(1000, Period.MONTH, now)
        simulated = await eng.ledger.report(1000, Period.MONTH, now, dry_run=True)
        assert real.settled_micros == 0 and real.jobs == 0
        assert simulated.settled_micros == 280_000 and simulated.jobs == 1


async def test_a_dry_run_job_interrupted_before_its_submit_is_never_sent_to_real_runware(
    engine_in: EngineIn, sim: RunwareSimulator
) -> None:
    async with engine_in(True) as (eng, _):
        plan = await eng.service.plan(VideoOptions(prompt="a paper boat"), ALICE)
        job = await eng.service.reserve(plan)  # the row and its task are written; the crash comes before the submit
    async with engine_in(False) as (eng, _):
        await eng.start_tracking()  # recovers interrupted jobs of its own mode only
        await eng.tracker.sweep_once()
        assert video_submits(sim) == 0
        left = await eng.jobs.get(job.id)
        assert left is not None and left.state is JobState.RESERVED
    async with engine_in(True) as (eng, sink):
        await eng.start_tracking()
        await eng.tracker.sweep_once()
        done = await eng.jobs.get(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED
        assert [d[0] for d in sink.delivered] == [job.id]
    assert video_submits(sim) == 0


async def test_a_live_job_in_flight_is_left_alone_by_a_dry_run_start(
    engine_in: EngineIn, sim: RunwareSimulator
) -> None:
    async with engine_in(False) as (eng, _):
        job = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
        assert job.state is JobState.SUBMITTED and not job.dry_run
    async with engine_in(True) as (eng, sink):
        await eng.start_tracking()
        for _ in range(4):  # more sweeps than the "Runware no longer knows this job" strikes
            await eng.tracker.sweep_once()
        still = await eng.jobs.get(job.id)
        assert still is not None and still.state is JobState.SUBMITTED  # not failed, its money still held
        assert sink.failed == []
        assert await eng.ledger.held_job_ids() == [job.id]
    sim.finish(job.task_uuid)
    async with engine_in(False) as (eng, sink):
        await eng.start_tracking()
        await eng.tracker.sweep_once()
        done = await eng.jobs.get(job.id)
        assert done is not None and done.state is JobState.SUCCEEDED and done.cost_micros == 280_000
        assert eng.metrics.value("hailuo_spend_micros_total", mode="real") == 280_000
