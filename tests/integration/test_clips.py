"""Clip downloads: streamed, capped, checked to be a video."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.core.clips import ClipError, ClipTooLarge, fetch_clip, looks_like_video, save_clip
from bot.runware.client import RunwareClient
from bot.simulator.server import RunwareSimulator
from tests.runware_helpers import Receiver, video_task


async def _clip_url(sim: RunwareSimulator, client: RunwareClient) -> str:
    task = video_task()
    await client.submit(task)
    sim.finish(task.task_uuid)
    status = (await client.get_responses([task.task_uuid]))[task.task_uuid]
    url = status.successes[0].video_url
    assert url is not None
    return url


async def test_fetch_clip_returns_a_real_mp4(sim: RunwareSimulator, client: RunwareClient) -> None:
    url = await _clip_url(sim, client)
    data = await fetch_clip(client.http, url, max_bytes=10_000_000, timeout=5)
    assert data[4:8] == b"ftyp" and looks_like_video(data)


async def test_fetch_clip_refuses_more_than_the_cap(sim: RunwareSimulator, client: RunwareClient) -> None:
    url = await _clip_url(sim, client)
    sim.faults.oversized_clip_bytes = 3_000_000
    with pytest.raises(ClipTooLarge):
        await fetch_clip(client.http, url, max_bytes=1_000_000, timeout=5)


async def test_save_clip_streams_to_disk_and_leaves_nothing_on_failure(
    sim: RunwareSimulator, client: RunwareClient, tmp_path: Path
) -> None:
    url = await _clip_url(sim, client)
    dest = tmp_path / "clip.mp4"
    size = await save_clip(client.http, url, dest, max_bytes=10_000_000, timeout=5)
    assert dest.read_bytes()[4:8] == b"ftyp" and size == dest.stat().st_size
    sim.faults.oversized_clip_bytes = 3_000_000
    other = tmp_path / "big.mp4"
    with pytest.raises(ClipTooLarge):
        await save_clip(client.http, url, other, max_bytes=1_000_000, timeout=5)
    assert not other.exists() and list(tmp_path.iterdir()) == [dest]


async def test_not_a_video_and_http_errors_are_refused(receiver: Receiver) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ClipError, match="not a video"):
            await fetch_clip(http, f"{receiver.url}/page.html", max_bytes=1000, timeout=5)
        receiver.statuses.append(404)
        with pytest.raises(ClipError, match="404"):
            await fetch_clip(http, f"{receiver.url}/gone.mp4", max_bytes=1000, timeout=5)
