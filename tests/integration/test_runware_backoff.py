"""The Runware client's waits between tries: jitter on every backoff, and Retry-After honoured on 429 (over HTTP)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp import web

from bot.runware.answers import MAX_RETRY_AFTER, retry_after_seconds
from bot.runware.client import RunwareClient
from bot.runware.errors import ErrorKind, RunwareUnavailable
from bot.simulator.server import RunwareSimulator
from tests.runware_helpers import SIM_KEY, video_task


class Sleeps:
    """Records the waits the client asks for instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


async def test_every_backoff_has_jitter(sim: RunwareSimulator) -> None:
    delays: list[list[float]] = []
    for seed in (1, 2):
        sleeps = Sleeps()
        async with RunwareClient(
            base_url=sim.base_url, api_key=SIM_KEY, backoff=1.0, max_attempts=3, sleep=sleeps, rng=random.Random(seed)
        ) as client:
            sim.faults.http_error_next(503, n=2, task_type="getResponse")
            await client.get_responses([video_task().task_uuid])
        delays.append(sleeps.delays)
    for first, second in delays:
        assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0  # half the exponential step fixed, half random
    assert delays[0] != delays[1]


@pytest.fixture
async def rate_limited() -> AsyncIterator[Callable[[str], str]]:
    """A loopback Runware stand-in that answers 429 with a given Retry-After once, then an empty 200 answer."""
    state: dict[str, str | None] = {"retry_after": None}

    async def handle(_: web.Request) -> web.Response:
        value = state["retry_after"]
        if value is not None:
            state["retry_after"] = None
            return web.json_response({"errors": []}, status=429, headers={"Retry-After": value})
        return web.json_response({"data": []})

    app = web.Application()
    app.router.add_post("/v1", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def arm(value: str) -> str:
        state["retry_after"] = value
        return f"http://127.0.0.1:{port}/v1"

    yield arm
    await runner.cleanup()


async def test_429_waits_what_retry_after_asks(rate_limited: Callable[[str], str]) -> None:
    sleeps = Sleeps()
    url = rate_limited("3")
    async with RunwareClient(base_url=url, api_key="k", backoff=0.01, sleep=sleeps) as client:
        await client.get_responses([video_task().task_uuid])
    assert len(sleeps.delays) == 1 and 3.0 <= sleeps.delays[0] <= 3.01


async def test_429_with_an_http_date_waits_until_then(rate_limited: Callable[[str], str]) -> None:
    sleeps = Sleeps()
    url = rate_limited(format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True))
    async with RunwareClient(base_url=url, api_key="k", backoff=0.01, sleep=sleeps) as client:
        await client.get_responses([video_task().task_uuid])
    assert len(sleeps.delays) == 1 and 15 <= sleeps.delays[0] <= 21


async def test_a_long_retry_after_fails_now_instead_of_waiting(rate_limited: Callable[[str], str]) -> None:
    sleeps = Sleeps()
    url = rate_limited(str(int(MAX_RETRY_AFTER) + 60))
    async with RunwareClient(base_url=url, api_key="k", sleep=sleeps) as client:
        with pytest.raises(RunwareUnavailable) as info:
            await client.get_responses([video_task().task_uuid])
    assert sleeps.delays == []
    assert info.value.kind is ErrorKind.RATE_LIMITED and info.value.retry_after == MAX_RETRY_AFTER + 60
