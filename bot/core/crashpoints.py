"""Crash points for the kill tests: inert unless HAILUO_CRASH_AT names one, then the process dies on the spot."""

from __future__ import annotations

import os
import signal

ENV = "HAILUO_CRASH_AT"

#: Every place a job can be interrupted, in the order a job passes them.
POINTS = ("after_job_row", "after_submit", "after_webhook_receipt", "after_download", "after_post")


def crash_point(name: str) -> None:
    """SIGKILL this process if the environment asks to crash here (tests only; nothing happens otherwise)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
