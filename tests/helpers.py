"""Helpers shared by integration and end-to-end tests (no fixtures here)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.errors import Failure, UserFacingError
from bot.core.models import ClipResult, Job, JobState, Payer
from bot.core.sink import Delivered
from bot.settings import Settings
from bot.store.interface import Database, open_database
from bot.store.jobs import NewJob
from bot.ui.texts_errors import error_text, failure_text
from tests.runware_helpers import SIM_KEY

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def open_test_database(target: Path | str, **options: Any) -> Database:
    """A (not yet opened) database at `target`: a SQLite file path, or a PostgreSQL URL."""
    if isinstance(target, str):
        return open_database(path=Path("unused.sqlite3"), url=target)
    from bot.store.sqlite.db import SqliteDatabase

    return SqliteDatabase(target, **options)


#: The store's tables, children before parents.
EMPTY_ORDER = (
    "results",
    "ledger",
    "job_leases",
    "jobs",
    "limits",
    "guild_settings",
    "channel_settings",
    "audit",
    "webhook_receipts",
    "kv",
)


async def empty_postgres_database(url: str) -> None:
    """Empty every table of the store in a PostgreSQL database (schema kept) and reset its id counters."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        # DELETE, not TRUNCATE: on a few small tables it is many times faster (no new files, no catalog churn).
        listed = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = {row[0] for row in listed} - {"schema_version"}
        sequences = [row[0] for row in await conn.fetch("SELECT relname FROM pg_class WHERE relkind = 'S'")]
        ordered = [name for name in EMPTY_ORDER if name in tables] + sorted(tables - set(EMPTY_ORDER))
        statements = [f"DELETE FROM {name}" for name in ordered]
        statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
        if statements:
            await conn.execute(";\n".join(statements))
    finally:
        await conn.close()


def database_settings(target: Path | str) -> dict[str, str]:
    """The [database] section for `target` (a SQLite file path, or a PostgreSQL URL)."""
    return {"url": target} if isinstance(target, str) else {"path": str(target)}


def make_settings(
    db_path: Path | str,
    runware_base: str,
    *,
    discord_base: str = "",
    token: str = "",
    public_url: str = "",
    webhook_secret: str = "",
    **sections: dict[str, Any],
) -> Settings:
    """Settings for a test: a temp database, the simulator, loopback only, fast loops."""
    data: dict[str, Any] = {
        "discord": {"api_base": discord_base, "token": token, "dev_guild_ids": [1000] if discord_base else []},
        "runware": {"api_base": runware_base, "api_key": SIM_KEY, "request_timeout": 3, "poll_interval": 3600},
        "webhook": {"listen": "127.0.0.1:0", "public_url": public_url, "secret": webhook_secret},
        "database": database_settings(db_path),
        "delivery": {"status_edit_interval": 0, "download_timeout": 10},
    }
    for name, values in sections.items():
        if isinstance(data.get(name), dict):
            data[name].update(values)
        else:
            data[name] = values
    return Settings(**data)


@contextmanager
def raises_saying(kind: type[UserFacingError], pattern: str) -> Iterator[pytest.ExceptionInfo[UserFacingError]]:
    """Like pytest.raises, and the member reads words matching `pattern` (as bot/ui renders the error)."""
    with pytest.raises(kind) as info:
        yield info
    text = error_text(info.value)
    assert re.search(pattern, text), text


class RecordingSink:
    """A JobSink that records what the engine asked for; `deliver` succeeds unless told otherwise."""

    def __init__(self) -> None:
        self.submitted: list[int] = []
        self.progress: list[tuple[int, int | None]] = []
        self.delivered: list[tuple[int, list[int], bool]] = []
        self.failed: list[tuple[int, str]] = []
        self.cancelled: list[int] = []
        self.fail_deliveries = 0

    async def job_submitted(self, job: Job) -> None:
        self.submitted.append(job.id)

    async def job_progress(self, job: Job, progress: int | None) -> None:
        self.progress.append((job.id, progress))

    async def deliver(self, job: Job, results: Sequence[ClipResult], *, redelivery: bool) -> list[Delivered]:
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise RuntimeError("simulated delivery failure")
        self.delivered.append((job.id, [r.id for r in results], redelivery))
        return [Delivered(r.id, ok=True, message_id=10_000 + r.id, channel_id=job.channel_id) for r in results]

    async def job_failed(self, job: Job, reason: Failure) -> None:
        self.failed.append((job.id, failure_text(reason)))

    async def job_cancelled(self, job: Job) -> None:
        self.cancelled.append(job.id)


def new_job(**changes: Any) -> NewJob:
    """A job about to be reserved: one member-paid 768p clip of 6 s in guild 1, channel 2; override any field."""
    base = NewJob(
        task_uuid="task-1",
        guild_id=1,
        channel_id=2,
        budget_channel_id=2,
        user_id=3,
        payer=Payer.MEMBER,
        pool_channel_id=None,
        prompt="a cat on a skateboard",
        resolution="768p",
        duration=6,
        variations=1,
        prompt_optimizer=False,
        frame_count=0,
        params={},
        estimate_micros=280_000,
        dry_run=False,
    )
    return replace(base, **changes)


def free_port() -> int:
    """A loopback TCP port nothing listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    """An injectable clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


JOB_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_job(**changes: object) -> Job:
    """A finished job row for pure formatting/status tests; override any field."""
    base = Job(
        id=7,
        task_uuid="00000000-0000-4000-8000-000000000007",
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
        state=JobState.SUCCEEDED,
        estimate_micros=280_000,
        cost_micros=280_000,
        error=None,
        dry_run=False,
        created_at=JOB_TIME,
        updated_at=JOB_TIME,
        finished_at=JOB_TIME,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """A /metrics answer read by prometheus_client's own parser: samples by (name, labels), and each family's type."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name + ("_total" if family.type == "counter" else "")] = family.type
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples, types


def metric_value(samples: Samples | str, name: str, **labels: str) -> float:
    """One sample's value, from parsed samples or from the /metrics text itself."""
    if isinstance(samples, str):
        samples = parse_metrics(samples)[0]
    return samples[(name, tuple(sorted(labels.items())))]
