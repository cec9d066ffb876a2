"""Crash points for the kill tests: inert unless HAILUO_CRASH_AT names one, then the process dies on the spot.

HAILUO_CRASH_SKIP=N lets the first N passes of that point go by (die at the (N+1)th job to reach it).
"""

from __future__ import annotations

import os
import signal

ENV = "HAILUO_CRASH_AT"
SKIP_ENV = "HAILUO_CRASH_SKIP"

#: Every place a job can be interrupted, in the order a job passes them.
POINTS = ("after_job_row", "after_submit", "after_webhook_receipt", "after_download", "after_post")

_passed: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process if the environment asks to crash here (tests only; nothing happens otherwise)."""
    if os.environ.get(ENV) != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] > int(os.environ.get(SKIP_ENV) or 0):
        os.kill(os.getpid(), signal.SIGKILL)
