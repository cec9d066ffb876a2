"""A gateway reconnect (Discord unreachable for a while) is one WARNING line per retry, not a traceback each.

Driven through discord.py's own reconnect loop (`Client.connect`), logged in against the loopback Discord with a
gateway that refuses connections, so a change in discord.py's wording or path shows up here.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket

from bot.app import point_at
from bot.logs import reset_logging, setup_logging
from bot.settings import LoggingSettings
from tests.fakes.discord import FakeDiscord
from tests.helpers import free_port

discord_client = logging.getLogger("discord.client")


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        point_at(server.api_base)
        try:
            yield server
        finally:
            point_at("")


def _setup(token: str, json_lines: bool = False) -> io.StringIO:
    out = io.StringIO()
    setup_logging(LoggingSettings(level="INFO", json_lines=json_lines), secrets=[token], stream=out)
    return out


class _Retries(logging.Handler):
    """Wakes the test when discord.py has logged `n` reconnect attempts."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.seen = 0
        self.done = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Attempting a reconnect"):
            self.seen += 1
            if self.seen >= self.n:
                self.done.set()


async def reconnect_once(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    """Log in for real, then let discord.py's connect loop fail to reach the gateway and log its retry."""
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(f"ws://127.0.0.1:{free_port()}/"))
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", False)  # as the bot does: it never joins voice
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", False)
    client = discord.Client(intents=discord.Intents.none())
    retries = _Retries(1)
    discord_client.addHandler(retries)
    try:
        await client.login(fake.token)
        runner = asyncio.create_task(client.connect(reconnect=True))
        await asyncio.wait_for(retries.done.wait(), 30)
        runner.cancel()  # during discord.py's back-off sleep
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    finally:
        discord_client.removeHandler(retries)
        await client.close()


async def test_a_reconnect_is_one_warning_line_naming_the_cause(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _setup(fake.token)
    await reconnect_once(fake, monkeypatch)
    lines = [line for line in out.getvalue().splitlines() if "reconnect" in line]
    assert len(lines) == 1, out.getvalue()
    assert " WARNING discord.client: Attempting a reconnect in " in lines[0]
    assert ": lost the connection to Discord (ClientConnectorError: Cannot connect to host 127.0.0.1:" in lines[0]
    assert "Traceback" not in out.getvalue() and fake.token not in out.getvalue()


async def test_json_lines_too_and_other_errors_keep_their_traceback(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _setup(fake.token, json_lines=True)
    await reconnect_once(fake, monkeypatch)
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        discord_client.exception("Ignoring exception in on_ready")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    first, second = (r for r in records if "reconnect" in r["msg"] or "on_ready" in r["msg"])
    assert first["level"] == "WARNING" and "exc" not in first
    assert "lost the connection to Discord (ClientConnectorError" in first["msg"]
    assert second["level"] == "ERROR" and "RuntimeError: a bug" in second["exc"]


async def test_the_sharded_clients_failed_connect_is_one_warning_line_too(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot is an AutoShardedBot: discord.shard logs a shard that cannot connect (and each shard's retries)."""
    out = _setup(fake.token)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(f"ws://127.0.0.1:{free_port()}/"))
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", False)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", False)
    client = discord.AutoShardedClient(intents=discord.Intents.none(), shard_count=1)
    seen = asyncio.Event()

    class _Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Failed to connect for shard_id"):
                seen.set()

    shard_log = logging.getLogger("discord.shard")
    handler = _Seen()
    shard_log.addHandler(handler)
    try:
        await client.login(fake.token)
        runner = asyncio.create_task(client.connect(reconnect=True))
        await asyncio.wait_for(seen.wait(), 30)
        runner.cancel()  # during discord.py's 5 s pause before the next try
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    finally:
        shard_log.removeHandler(handler)
        await client.close()
    lines = [line for line in out.getvalue().splitlines() if "shard_id" in line]
    assert len(lines) == 1, out.getvalue()
    assert " WARNING discord.shard: Failed to connect for shard_id: 0. Retrying...: lost the connection to" in lines[0]
    assert "Traceback" not in out.getvalue() and fake.token not in out.getvalue()
