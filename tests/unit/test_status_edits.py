"""StatusReporter: edits spaced by the interval on the injected clock, coalesced, never backwards; bounded memory."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.core.models import Job, JobState
from bot.ui import status as status_module
from bot.ui.status import StatusReporter
from tests.helpers import Clock, make_job


def job(job_id: int) -> Job:
    return make_job(
        id=job_id,
        task_uuid=f"00000000-0000-4000-8000-{job_id:012d}",
        state=JobState.SUBMITTED,
        cost_micros=None,
        finished_at=None,
        status_channel_id=2,
        status_message_id=10_000 + job_id,
    )


class Time(Clock):
    """The injected clock, and a sleep that moves it instead of waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Edits:
    """Stands in for Discord's REST: records each status edit and when it went out (the reporter is tested here)."""

    def __init__(self, time: Time) -> None:
        self.time = time
        self.edits: list[tuple[int, str]] = []
        self.times: list[datetime] = []

    def get_partial_messageable(self, channel_id: int) -> Edits:
        return self

    def get_partial_message(self, message_id: int) -> _Message:
        return _Message(self, message_id)


class _Message:
    def __init__(self, edits: Edits, message_id: int) -> None:
        self._edits = edits
        self._id = message_id

    async def edit(self, *, content: str, **_: Any) -> None:
        self._edits.edits.append((self._id, content))
        self._edits.times.append(self._edits.time.now)


async def test_ended_jobs_are_remembered_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_module, "ENDED_MEMORY", 3)
    time = Time()
    edits = Edits(time)
    reporter = StatusReporter(edits, jobs=None, interval=0, clock=time, sleep=time.sleep)  # type: ignore[arg-type]
    for n in range(1, 11):
        await reporter.update(job(n), "generating")
        await reporter.update(job(n), "done")
    assert len(reporter._ended) <= 3
    assert reporter._last_edit == {}
    before = len(edits.edits)
    await reporter.update(job(10), "generating")  # a late poll round for a job that just ended
    assert len(edits.edits) == before


async def test_edits_are_spaced_by_the_interval_coalesced_and_never_go_backwards() -> None:
    time = Time()
    edits = Edits(time)
    interval = 20.0  # on the injected clock: the test never waits for it
    reporter = StatusReporter(edits, jobs=None, interval=interval, clock=time, sleep=time.sleep)  # type: ignore[arg-type]
    j = job(1)
    await reporter.update(j, "generating")  # first edit: at once
    await reporter.update(j, "generating", progress=10)  # within the interval: waits
    await reporter.update(j, "delivering")  # replaces what waits
    await reporter.update(j, "generating", progress=90)  # stale (a lower phase is waiting): ignored
    assert [c.split(" · ")[0] for _, c in edits.edits] == ["🎬 Generating"]
    assert await reporter._timers.drain(5)  # the timer sends the newest state once the interval has passed
    await reporter.update(j, "done")
    assert await reporter._timers.drain(5)
    assert [c.split(" · ")[0] for _, c in edits.edits] == ["🎬 Generating", "📤 Posting", "✅ Done"]
    gaps = [(b - a).total_seconds() for a, b in zip(edits.times, edits.times[1:], strict=False)]
    assert gaps == [interval, interval], gaps  # never two edits within the interval, and no longer wait than that
    assert time.slept == [interval, interval]
    await reporter.update(j, "generating", progress=99)  # a late poll round after the end
    await reporter.flush()
    assert len(edits.edits) == 3
