"""The webhook listener against hostile or unlucky clients: real sockets, the real engine, the simulator (issue 11)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.engine import Engine
from bot.core.models import JobState
from bot.core.service import Requester, VideoOptions
from bot.settings import URL_SAFE_SECRET
from bot.simulator.server import RunwareSimulator
from tests.helpers import RecordingSink, make_settings

ALICE = Requester(guild_id=1000, channel_id=2000, user_id=3000, role_ids=(1000,))
SECRET = "s3cret-webhook-token"
READ_TIMEOUT = 0.5
MAX_CONNECTIONS = 8
GUARD = 30.0  # seconds: only so a broken listener fails the test instead of hanging it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def hooked(sim: RunwareSimulator, db_path: Path) -> AsyncIterator[tuple[Engine, RecordingSink, int]]:
    port = free_port()
    settings = make_settings(
        db_path,
        sim.base_url,
        public_url=f"http://127.0.0.1:{port}",
        webhook_secret=SECRET,
        webhook={"listen": f"127.0.0.1:{port}", "read_timeout": READ_TIMEOUT, "max_connections": MAX_CONNECTIONS},
    )
    eng = Engine(settings)
    sink = RecordingSink()
    await eng.start(sink)
    yield eng, sink, port
    await eng.close()


def success_item(sim: RunwareSimulator, task_uuid: str, cost: Any = 0.28, **extra: Any) -> dict[str, Any]:
    return {
        "taskType": "videoInference",
        "taskUUID": task_uuid,
        "videoUUID": "7cc7aff3-93d8-4e63-a851-7ec51be14a93",
        "videoURL": f"{sim.origin}/video/7cc7aff3-93d8-4e63-a851-7ec51be14a93.mp4",
        "seed": 1,
        "cost": cost,
        **extra,
    }


async def post(port: int, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/runware/{SECRET}", data=body, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        return resp.status


async def raw_request(port: int, head: bytes, *parts: bytes) -> bytes:
    """Send a request in separate TCP segments (each written and flushed on its own); return the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        writer.write(head)
        await writer.drain()
        for part in parts:
            await asyncio.sleep(0.05)  # let the server read what came so far: the next part is a later segment
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), GUARD)
    finally:
        writer.close()


async def wait_for(condition: Any) -> None:
    async with asyncio.timeout(GUARD):
        while not await condition():
            await asyncio.sleep(0.02)


# -- bad costs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cost", [-0.28, math.nan, math.inf, 1e30], ids=["negative", "nan", "infinity", "1e30"])
async def test_a_webhook_with_an_impossible_cost_is_refused_and_the_good_one_still_finishes_the_job(
    hooked: tuple[Engine, RecordingSink, int], sim: RunwareSimulator, cost: float
) -> None:
    eng, sink, port = hooked
    job = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    body = json.dumps({"data": [success_item(sim, job.task_uuid, cost)]}).encode()  # NaN/Infinity as Python writes
    assert await post(port, body) == 400
    assert await eng.jobs.results(job.id) == []
    stuck = await eng.jobs.get(job.id)
    assert stuck is not None and stuck.state is JobState.SUBMITTED and stuck.cost_micros is None
    assert await eng.ledger.held_job_ids() == [job.id]
    # The real result still counts, and settles at its real cost.
    assert await post(port, json.dumps({"data": [success_item(sim, job.task_uuid)]}).encode()) == 200
    await eng.tracker._tasks.drain(GUARD)
    await eng.tracker.delivery_pool.idle()
    done = await eng.jobs.get(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED and done.cost_micros == 280_000
    assert await eng.ledger.held_job_ids() == []
    assert len(sink.delivered) == 1


# -- bodies ------------------------------------------------------------------------------------------------------


async def test_a_webhook_arriving_in_two_tcp_segments_is_read_whole(
    hooked: tuple[Engine, RecordingSink, int], sim: RunwareSimulator
) -> None:
    eng, _, port = hooked
    job = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    body = json.dumps({"data": [success_item(sim, job.task_uuid)]}).encode()
    head = (
        f"POST /runware/{SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = await raw_request(port, head + body[:40], body[40:])
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert len(await eng.jobs.results(job.id)) == 1


async def test_a_webhook_larger_than_one_read_is_read_whole(
    hooked: tuple[Engine, RecordingSink, int], sim: RunwareSimulator
) -> None:
    eng, _, port = hooked
    job = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    padding = "x" * 600_000  # Runware adds fields; a big one must not make the body unreadable
    body = json.dumps({"data": [success_item(sim, job.task_uuid, note=padding)]}).encode()
    assert await post(port, body) == 200
    assert len(await eng.jobs.results(job.id)) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"data": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    ],
    ids=["nested-lists", "nested-objects"],
)
async def test_deeply_nested_json_is_a_4xx(hooked: tuple[Engine, RecordingSink, int], body: bytes) -> None:
    _, _, port = hooked
    assert await post(port, body) == 400


async def test_progress_1e999_is_a_4xx_and_changes_nothing(
    hooked: tuple[Engine, RecordingSink, int], sim: RunwareSimulator
) -> None:
    eng, sink, port = hooked
    job = await eng.service.create(VideoOptions(prompt="a glass city"), ALICE)
    item = {"taskType": "videoInference", "taskUUID": job.task_uuid, "status": "processing", "progress": 1}
    body = json.dumps({"data": [item]}).replace('"progress": 1', '"progress": 1e999')
    assert await post(port, body.encode()) == 400
    again = await eng.jobs.get(job.id)
    assert again is not None and again.state is JobState.SUBMITTED and sink.progress == []


# -- the listener ------------------------------------------------------------------------------------------------


async def test_a_connection_stalled_mid_headers_is_closed(hooked: tuple[Engine, RecordingSink, int]) -> None:
    _, _, port = hooked
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /runware/" + SECRET.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), GUARD) == b""  # the server hung up; no answer
    finally:
        writer.close()


async def test_a_body_that_never_finishes_is_cut_off(hooked: tuple[Engine, RecordingSink, int]) -> None:
    _, _, port = hooked
    head = (
        f"POST /runware/{SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n"
    ).encode()
    answer = await raw_request(port, head + b'{"data": [')
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_idle_half_requests_beyond_the_cap_do_not_stop_healthz(hooked: tuple[Engine, RecordingSink, int]) -> None:
    eng, _, port = hooked
    half_open: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(MAX_CONNECTIONS * 4):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            await writer.drain()
            half_open.append((reader, writer))
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=GUARD)) as resp,
        ):
            body = await resp.json()
        assert "checks" in body and body["checks"]["database"] is True
        assert eng.webhook_server is not None
        assert eng.webhook_server.guard.evicted >= MAX_CONNECTIONS * 3  # the oldest half-requests made room
        closed = 0
        for reader, _ in half_open[: MAX_CONNECTIONS * 3]:
            closed += await asyncio.wait_for(reader.read(), GUARD) == b""
        assert closed == MAX_CONNECTIONS * 3
    finally:
        for _, writer in half_open:
            writer.close()


async def test_a_generated_webhook_secret_is_url_safe(sim: RunwareSimulator, db_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        db_path, sim.base_url, public_url=f"http://127.0.0.1:{port}", webhook={"listen": f"127.0.0.1:{port}"}
    )
    eng = Engine(settings)
    await eng.start(RecordingSink())
    try:
        assert eng.webhook_url is not None
        secret = eng.webhook_url.rsplit("/", 1)[1]
        assert len(secret) >= 32 and URL_SAFE_SECRET.match(secret)
    finally:
        await eng.close()


async def test_a_burst_of_connections_is_shed_down_to_the_cap(sim: RunwareSimulator, db_path: Path) -> None:
    port = free_port()
    settings = make_settings(
        db_path,
        sim.base_url,
        webhook={"listen": f"127.0.0.1:{port}", "read_timeout": 120, "max_connections": MAX_CONNECTIONS},
    )
    eng = Engine(settings)
    await eng.start(RecordingSink())
    writers: list[asyncio.StreamWriter] = []
    try:
        assert eng.webhook_server is not None
        opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS * 6)))
        writers += [writer for _, writer in opened]
        _, last = await asyncio.open_connection("127.0.0.1", port)  # the next accept sheds what the burst overshot
        writers.append(last)
        async with asyncio.timeout(GUARD):
            while eng.webhook_server.open_connections > MAX_CONNECTIONS:
                await asyncio.sleep(0.01)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=GUARD)) as resp,
        ):
            assert "checks" in await resp.json()
    finally:
        for writer in writers:
            writer.close()
        await eng.close()
