"""Runware test helpers: task builders, a tiny PNG and the recording HTTP receiver's state."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.runware.models import VideoInferenceTask, new_task_uuid

SIM_KEY = "sim-key"


def video_task(**overrides: Any) -> VideoInferenceTask:
    """A valid 768p, 6 s task as the service sends it (RUNWARE.md §3.1), with overrides."""
    values: dict[str, Any] = {
        "task_uuid": new_task_uuid(),
        "model": "minimax:3@1",
        "positive_prompt": "a red fox running through fresh snow, cinematic",
        "width": 1366,
        "height": 768,
        "duration": 6,
        "fps": 25,
        "delivery_method": "async",
        "include_cost": True,
        "number_results": 1,
    }
    values.update(overrides)
    return VideoInferenceTask(**values)


@dataclass
class Receiver:
    """A loopback HTTP server's record: every call, and statuses to answer with (then 200)."""

    url: str = ""
    calls: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body)
    statuses: deque[int] = field(default_factory=deque)

    def json_bodies(self, method: str = "POST") -> list[Any]:
        return [json.loads(body) for m, _, body in self.calls if m == method]
