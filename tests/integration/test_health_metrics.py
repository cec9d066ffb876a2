"""/healthz and /metrics on the webhook server of a real Engine (simulator, each database backend, loopback HTTP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.core.engine import Engine
from bot.core.metrics import CONTENT_TYPE
from bot.core.plans import Requester, VideoOptions
from bot.simulator.server import RunwareSimulator
from tests.helpers import Clock, RecordingSink, make_settings, metric_value, parse_metrics

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))


class Discord:
    """Stands in for the bot's Discord health (a real one comes from HailuoBot; here the test flips it)."""

    def __init__(self) -> None:
        self.up = True

    async def __call__(self) -> dict[str, bool]:
        return {"discord": self.up}


@pytest.fixture
async def served(
    sim: RunwareSimulator, db_target: Path | str
) -> AsyncIterator[tuple[Engine, RecordingSink, Discord, str]]:
    discord = Discord()
    eng = Engine(make_settings(db_target, sim.base_url), extra_health=discord)
    sink = RecordingSink()
    await eng.start(sink)
    assert eng.webhook_server is not None
    try:
        yield eng, sink, discord, f"http://127.0.0.1:{eng.webhook_server.bound_port}"
    finally:
        await eng.close()


async def get(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def get_health(base: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as resp:
        return resp.status, await resp.json()


async def test_healthz_is_503_until_the_tracker_runs_then_200(
    served: tuple[Engine, RecordingSink, Discord, str],
) -> None:
    eng, _, _, base = served
    status, doc = await get_health(base)
    assert status == 503
    assert doc["failing"] == ["tracker"]
    assert doc["checks"] == {"database": True, "tracker": False, "discord": True}
    await eng.start_tracking()
    status, doc = await get_health(base)
    assert status == 200
    assert doc == {"ok": True, "checks": {"database": True, "tracker": True, "discord": True}, "failing": []}


async def test_healthz_names_discord_when_it_is_down(served: tuple[Engine, RecordingSink, Discord, str]) -> None:
    eng, _, discord, base = served
    await eng.start_tracking()
    discord.up = False
    status, doc = await get_health(base)
    assert status == 503 and doc["failing"] == ["discord"] and doc["ok"] is False


async def test_healthz_names_the_database_when_it_is_gone(
    served: tuple[Engine, RecordingSink, Discord, str], caplog: pytest.LogCaptureFixture
) -> None:
    eng, _, _, base = served
    caplog.set_level(logging.WARNING, logger="bot.core.engine")
    await eng.start_tracking()
    await eng.db.close()
    status, doc = await get_health(base)
    assert status == 503 and doc["failing"] == ["database"]
    assert "health: the database check failed" in caplog.text  # the error is logged, not swallowed
    assert "database is not open" in caplog.text


async def test_metrics_count_jobs_requests_webhooks_deliveries_and_spend(
    served: tuple[Engine, RecordingSink, Discord, str], sim: RunwareSimulator
) -> None:
    eng, sink, _, base = served
    job = await eng.service.create(VideoOptions(prompt="a lighthouse in a storm"), ALICE)
    sim.finish(job.task_uuid)
    await eng.tracker.sweep_once()
    assert len(sink.delivered) == 1
    async with aiohttp.ClientSession() as http, http.post(base + "/runware/wrong-secret", json={"data": []}) as resp:
        assert resp.status == 401
    status, text, headers = await get(base + "/metrics")
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    samples, types = parse_metrics(text)
    assert types == {
        "hailuo_jobs": "gauge",
        "hailuo_runware_requests_total": "counter",
        "hailuo_runware_request_duration_seconds": "histogram",
        "hailuo_webhooks_total": "counter",
        "hailuo_deliveries_total": "counter",
        "hailuo_spend_micros_total": "counter",
    }
    # jobs by state, every state present
    assert metric_value(samples, "hailuo_jobs", state="succeeded") == 1
    assert metric_value(samples, "hailuo_jobs", state="failed") == 0
    # Runware requests and their latency
    assert metric_value(samples, "hailuo_runware_requests_total", task_type="videoInference", outcome="ok") == 1
    assert metric_value(samples, "hailuo_runware_requests_total", task_type="getResponse", outcome="ok") >= 1
    count = metric_value(samples, "hailuo_runware_request_duration_seconds_count", task_type="videoInference")
    assert count == 1
    assert (
        metric_value(samples, "hailuo_runware_request_duration_seconds_bucket", task_type="videoInference", le="+Inf")
        == 1
    )
    # webhooks received / rejected
    assert metric_value(samples, "hailuo_webhooks_total", outcome="bad_secret") == 1
    assert metric_value(samples, "hailuo_webhooks_total", outcome="ok") == 0
    # deliveries and spend (real, since this engine is live; nothing simulated)
    assert metric_value(samples, "hailuo_deliveries_total", outcome="attachment") == 1
    assert metric_value(samples, "hailuo_deliveries_total", outcome="undeliverable") == 0
    assert metric_value(samples, "hailuo_spend_micros_total", mode="real") == 280_000
    assert metric_value(samples, "hailuo_spend_micros_total", mode="dry_run") == 0


async def test_healthz_reports_a_hung_sweep_after_three_poll_intervals(sim: RunwareSimulator, db_path: Path) -> None:
    clock = Clock()
    eng = Engine(make_settings(db_path, sim.base_url), clock=clock)
    await eng.start(RecordingSink())
    try:
        await eng.start_tracking()
        assert eng.webhook_server is not None
        base = f"http://127.0.0.1:{eng.webhook_server.bound_port}"
        release = asyncio.Event()
        entered = asyncio.Event()

        async def hang() -> None:  # the next sweep never ends (a lookup that never returns)
            entered.set()
            await release.wait()

        eng.tracker.before_sweep = hang
        eng.tracker.loop.wake()
        await entered.wait()
        interval = eng.settings.runware.poll_interval
        clock.now += timedelta(seconds=3 * interval)
        assert (await get_health(base))[0] == 200  # three intervals: still within bounds
        clock.now += timedelta(seconds=1)
        status, doc = await get_health(base)
        assert status == 503 and doc["failing"] == ["tracker"]
        rounds = eng.tracker.loop.rounds
        release.set()
        while eng.tracker.loop.rounds == rounds:  # the sweep ends: healthy again
            await asyncio.sleep(0)
        assert (await get_health(base))[0] == 200
    finally:
        await eng.close()
