"""Clip downloads: streamed, capped, checked to be a video."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.core.clips import ClipError, ClipHosts, ClipRefused, ClipTooLarge, fetch_clip, looks_like_video, save_clip
from bot.runware.client import RunwareClient
from bot.settings import DEFAULT_CLIP_HOSTS
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


# -- where clips may come from (issue 11) --------------------------------------------------------------------------

RUNWARE_HOSTS = ClipHosts(DEFAULT_CLIP_HOSTS, "https://api.runware.ai/v1")


@pytest.mark.parametrize(
    "url",
    [
        "https://vm.runware.ai/video/os/a12d13/ws/5/vi/352b1681-5735-42d1-8da9-a780e3f14aa4.mp4",
        "https://im.runware.ai/video/ws/0.5/vi/352b1681.mp4",
        "https://api.runware.ai/clips/1.mp4",
    ],
)
def test_runwares_own_hosts_are_allowed(url: str) -> None:
    assert RUNWARE_HOSTS.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/clip.mp4",
        "https://vm.runware.ai.evil.example/clip.mp4",
        "https://vm.runware.ai:8443/clip.mp4",  # another port of an allowed host
        "https://api.runware.ai:8443/v1",
        "ftp://vm.runware.ai/clip.mp4",
        "file:///etc/passwd",
        "https://user:pw@vm.runware.ai/clip.mp4",
        "http://127.0.0.1:8080/clip.mp4",
        "not a url",
    ],
)
def test_other_hosts_ports_and_schemes_are_refused(url: str) -> None:
    assert not RUNWARE_HOSTS.allows(url)


def test_configured_hosts_and_subdomain_patterns() -> None:
    hosts = ClipHosts(["cdn.example.com", "*.clips.example"], "https://api.runware.ai/v1")
    assert hosts.allows("https://cdn.example.com/a.mp4") and hosts.allows("https://eu.clips.example/a.mp4")
    assert not hosts.allows("https://clips.example/a.mp4") and not hosts.allows("https://vm.runware.ai/a.mp4")


async def test_loopback_and_private_addresses_only_when_the_api_base_is_one() -> None:
    public = ClipHosts(["localhost", "10.1.2.3"], "https://93.184.216.34/v1")
    for url in ("http://localhost/clip.mp4", "http://10.1.2.3/clip.mp4"):
        assert public.allows(url)  # the names are on the list...
        with pytest.raises(ClipRefused, match="loopback or private"):  # ...but they are not public addresses
            await public.check(url)
    local = ClipHosts(["localhost"], "http://127.0.0.1:8765/v1")
    await local.check("http://localhost/clip.mp4")  # the simulator, a test, a local proxy


async def test_a_clip_from_a_host_outside_the_list_is_never_fetched(
    sim: RunwareSimulator, client: RunwareClient, receiver: Receiver
) -> None:
    hosts = ClipHosts(DEFAULT_CLIP_HOSTS, sim.base_url)
    await fetch_clip(client.http, await _clip_url(sim, client), max_bytes=10_000_000, timeout=5, hosts=hosts)
    elsewhere = receiver.url.replace("127.0.0.1", "localhost") + "/clip.mp4"
    with pytest.raises(ClipRefused):
        await fetch_clip(client.http, elsewhere, max_bytes=10_000_000, timeout=5, hosts=hosts)
    assert receiver.calls == []


async def test_a_redirect_to_another_host_or_port_is_not_followed(
    sim: RunwareSimulator, client: RunwareClient, receiver: Receiver
) -> None:
    url = await _clip_url(sim, client)
    hosts = ClipHosts(DEFAULT_CLIP_HOSTS, sim.base_url)
    sim.faults.redirect_clips_to = f"{receiver.url}/elsewhere.mp4"  # loopback, but not the API's port
    with pytest.raises(ClipRefused):
        await fetch_clip(client.http, url, max_bytes=10_000_000, timeout=5, hosts=hosts)
    sim.faults.redirect_clips_to = "https://evil.example/clip.mp4"
    with pytest.raises(ClipRefused):
        await fetch_clip(client.http, url, max_bytes=10_000_000, timeout=5, hosts=hosts)
    assert receiver.calls == []


async def test_a_clip_trickling_past_the_download_timeout_is_given_up(
    sim: RunwareSimulator, client: RunwareClient
) -> None:
    url = await _clip_url(sim, client)
    sim.faults.slow_clips[next(iter(sim.tasks))] = 300.0  # bytes keep coming, just very slowly
    hosts = ClipHosts(DEFAULT_CLIP_HOSTS, sim.base_url)
    with pytest.raises(ClipError, match="timed out"):
        await fetch_clip(client.http, url, max_bytes=10_000_000, timeout=0.5, hosts=hosts)
