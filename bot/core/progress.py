"""What each job's status message was last told about its progress, so a sweep tells the sink only what changed."""

from __future__ import annotations

from collections.abc import Collection

from bot.runware.results import TaskStatus


def progress_of(status: TaskStatus) -> int | None:
    """The furthest progress (0–100) Runware reports for the task's generations, if any."""
    return max((i.progress for i in status.items if i.progress is not None), default=None)


class ProgressMemory:
    """Progress is shown on a job's status message: news when the job has one and it was not told this yet."""

    def __init__(self) -> None:
        self._told: dict[int, tuple[int | None, int]] = {}  # job id -> (progress, status message)

    def is_news(self, job_id: int, status_message_id: int | None, progress: int | None) -> bool:
        return status_message_id is not None and self._told.get(job_id) != (progress, status_message_id)

    def told(self, job_id: int, status_message_id: int, progress: int | None) -> None:
        self._told[job_id] = (progress, status_message_id)

    def keep_only(self, job_ids: Collection[int]) -> None:
        """Forget jobs no longer tracked (finished, or left to another process)."""
        for job_id in [k for k in self._told if k not in job_ids]:
            del self._told[job_id]

    def __len__(self) -> int:
        return len(self._told)
