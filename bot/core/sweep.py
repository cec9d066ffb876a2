"""The poll sweep's cheap part: which jobs need a look after Runware answered (most need none), and what each job's
status message was last told about its progress, so the sink hears only what changed."""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta

from bot.core.models import JobState
from bot.runware.results import TaskStatus
from bot.store.driver import to_db_time
from bot.store.tracked import TrackedJob


class ProgressMemory:
    """Progress is shown on a job's status message: news when the job has one and it was not told this yet."""

    def __init__(self) -> None:
        self._told: dict[int, tuple[int | None, int]] = {}  # job id -> (progress, status message)

    def is_news(self, job_id: int, status_message_id: int | None, progress: int | None) -> bool:
        return status_message_id is not None and self._told.get(job_id) != (progress, status_message_id)

    def take_news(self, job_id: int, status_message_id: int | None, progress: int | None) -> bool:
        """`is_news`, remembered as told when it is."""
        if status_message_id is None or not self.is_news(job_id, status_message_id, progress):
            return False
        self._told[job_id] = (progress, status_message_id)
        return True

    def keep_only(self, job_ids: Collection[int]) -> None:
        """Forget jobs no longer tracked (finished, or left to another process)."""
        for job_id in [k for k in self._told if k not in job_ids]:
            del self._told[job_id]

    def __len__(self) -> int:
        return len(self._told)


def quiet(row: TrackedJob, status: TaskStatus, memory: ProgressMemory) -> bool:
    """True when the tracker's `apply_status` would do nothing for this job but forget its not-found strikes:
    Runware reports it still processing, and there is no progress to show (or it is cancelled: it waits for its end).
    """
    if status.not_found or status.errors or status.successes:
        return False
    return row.state is not JobState.SUBMITTED or not memory.is_news(row.id, row.status_message_id, status.progress)


def needing_a_look(
    live: Sequence[TrackedJob],
    statuses: Mapping[str, TaskStatus],
    now: datetime,
    max_wait: float,
    memory: ProgressMemory,
    not_found: MutableMapping[int, int],
) -> list[tuple[TrackedJob, TaskStatus | None]]:
    """The jobs to load in full and hand to `apply_status` (or expire): overdue, or with something new. For the
    quiet ones, forget their not-found strikes here (all `apply_status` would have done)."""
    busy: list[tuple[TrackedJob, TaskStatus | None]] = []
    cutoff = to_db_time(now - timedelta(seconds=max_wait))  # stored times compare as text: started before = overdue
    for row in live:
        status = statuses.get(row.task_uuid)
        if row.started_at < cutoff or (status is not None and not quiet(row, status, memory)):
            busy.append((row, status))
        elif status is not None:
            not_found.pop(row.id, None)
    return busy
