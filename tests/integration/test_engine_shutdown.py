"""Shutdown order of a real Engine: the webhook server stops taking requests before the tracker drains."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.core.engine import Engine
from bot.simulator.server import RunwareSimulator
from tests.helpers import RecordingSink, make_settings


async def test_webhooks_are_refused_before_the_tracker_drains(sim: RunwareSimulator, db_path: Path) -> None:
    eng = Engine(make_settings(db_path, sim.base_url))
    await eng.start(RecordingSink())
    assert eng.webhook_server is not None
    url = f"http://127.0.0.1:{eng.webhook_server.bound_port}/healthz"
    seen: list[object] = []
    drain = eng.tracker.stop

    async def stop_watching_the_port(drain_timeout: float = 10.0) -> None:
        """The tracker's own stop, after noting whether the webhook port still answers at that moment."""
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                seen.append(resp.status)
        except aiohttp.ClientConnectionError:
            seen.append("refused")
        await drain(drain_timeout)

    eng.tracker.stop = stop_watching_the_port  # type: ignore[method-assign]
    await eng.start_tracking()
    await eng.close()
    assert seen == ["refused"]
