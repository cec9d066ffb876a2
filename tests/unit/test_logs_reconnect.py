"""A gateway reconnect (Discord unreachable for a while) is one WARNING line per retry, not a traceback each."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import aiohttp
import pytest

from bot.logs import reset_logging, setup_logging
from bot.settings import LoggingSettings

discord_client = logging.getLogger("discord.client")


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)


def _setup(json_lines: bool = False) -> io.StringIO:
    out = io.StringIO()
    setup_logging(LoggingSettings(level="INFO", json_lines=json_lines), secrets=["secret-token-123456"], stream=out)
    return out


def _reconnect(exc: BaseException) -> None:
    try:
        raise exc
    except BaseException:
        discord_client.exception("Attempting a reconnect in %.2fs", 0.84)  # what discord.Client.connect logs


def test_a_reconnect_is_one_warning_line_naming_the_cause() -> None:
    out = _setup()
    _reconnect(aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:443 secret-token-123456"))
    _reconnect(TimeoutError())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, out.getvalue()
    assert " WARNING discord.client: Attempting a reconnect in 0.84s: lost the connection to Discord (" in lines[0]
    assert "ClientConnectionError: Cannot connect to host 127.0.0.1:443 ***)" in lines[0]
    assert lines[1].endswith("lost the connection to Discord (TimeoutError)")
    assert "Traceback" not in out.getvalue()


def test_json_lines_too_and_other_errors_keep_their_traceback() -> None:
    out = _setup(json_lines=True)
    _reconnect(OSError("network is unreachable"))
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        discord_client.exception("Ignoring exception in on_ready")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and "exc" not in first and "(OSError: network is unreachable)" in first["msg"]
    assert second["level"] == "ERROR" and "RuntimeError: a bug" in second["exc"]


def test_the_sharded_clients_reconnects_are_one_warning_line_too() -> None:
    """HailuoBot is an AutoShardedBot: discord.shard logs each shard's retry, and a failed first connect."""
    out = _setup()
    shard_log = logging.getLogger("discord.shard")
    for message, args in (
        ("Attempting a reconnect for shard ID %s in %.2fs", (1, 0.5)),
        ("Failed to connect for shard_id: %s. Retrying...", (0,)),
    ):
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError:
            shard_log.error(message, *args, exc_info=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, out.getvalue()
    assert " WARNING discord.shard: Attempting a reconnect for shard ID 1 in 0.50s: lost the connection" in lines[0]
    assert " WARNING discord.shard: Failed to connect for shard_id: 0. Retrying...: lost the connection" in lines[1]
    assert "Traceback" not in out.getvalue()
