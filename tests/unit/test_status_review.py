"""StatusReporter keeps bounded per-job memory while still ignoring stale routine updates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot import status as status_module
from bot.models import Job, JobState, Payer
from bot.status import StatusReporter

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def job(job_id: int) -> Job:
    return Job(
        id=job_id,
        task_uuid=f"00000000-0000-4000-8000-{job_id:012d}",
        guild_id=1,
        channel_id=2,
        user_id=3,
        payer=Payer.MEMBER,
        pool_channel_id=None,
        prompt="a red fox in fresh snow",
        resolution="768p",
        duration=6,
        variations=1,
        prompt_optimizer=False,
        frame_count=0,
        state=JobState.SUBMITTED,
        estimate_micros=280_000,
        cost_micros=None,
        error=None,
        dry_run=False,
        created_at=NOW,
        updated_at=NOW,
        status_channel_id=2,
        status_message_id=10_000 + job_id,
    )


class Edits:
    """Stands in for Discord's REST: records each status edit (the reporter is what is tested here)."""

    def __init__(self) -> None:
        self.edits: list[tuple[int, str]] = []

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


async def test_ended_jobs_are_remembered_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_module, "ENDED_MEMORY", 3)
    edits = Edits()
    reporter = StatusReporter(edits, jobs=None, interval=0)  # type: ignore[arg-type]
    for n in range(1, 11):
        await reporter.update(job(n), "generating")
        await reporter.update(job(n), "done")
    assert len(reporter._ended) <= 3
    assert reporter._last_edit == {}
    before = len(edits.edits)
    await reporter.update(job(10), "generating")  # a late poll round for a job that just ended
    assert len(edits.edits) == before
