"""Runware fixtures: the simulator on 127.0.0.1:0, a client aimed at it, and a recording HTTP receiver.

Test modules load them with `pytest_plugins = ["tests.conftest_runware"]`; tests/conftest.py may do the same to
share them project-wide. Helpers (task builders, PNG bytes) live in tests/runware_helpers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.runware.client import RunwareClient
from bot.simulator.server import RunwareSimulator
from tests.runware_helpers import SIM_KEY, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A loopback HTTP server (any method, any path) that records calls, for webhooks and uploadEndpoint PUTs."""
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        rec.calls.append((request.method, request.path_qs, await request.read()))
        status = rec.statuses.popleft() if rec.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "no")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def sim() -> AsyncIterator[RunwareSimulator]:
    """A strict simulator that completes tasks only on `finish()`; webhook retries 10 ms apart."""
    async with RunwareSimulator(api_key=SIM_KEY, auto_complete=False, webhook_retry_delays=(0.01, 0.01, 0.01)) as s:
        yield s


@pytest.fixture
async def client(sim: RunwareSimulator) -> AsyncIterator[RunwareClient]:
    async with RunwareClient(base_url=sim.base_url, api_key=SIM_KEY, timeout=2.0, backoff=0.01) as c:
        yield c
