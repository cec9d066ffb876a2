"""Point a discord.py client at another Discord (the loopback fake, or a REST proxy): SPEC §7a.

discord.py has no per-client REST base or gateway URL: `Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY`
are class attributes. `Client.connect` never asks Discord for the gateway URL (only AutoShardedClient
does), and after an INVALID_SESSION it falls back to `DEFAULT_GATEWAY` again, so that is the attribute to
set, with the URL that `GET {api_base}/gateway/bot` announces, right before the first connection.
"""

from __future__ import annotations

from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket

PUBLIC_API_BASE = discord.http.Route.BASE
PUBLIC_GATEWAY = DiscordWebSocket.DEFAULT_GATEWAY


async def use_gateway_from_api(client: discord.Client) -> yarl.URL:
    """Ask GET {Route.BASE}/gateway/bot for the gateway URL and make discord.py connect there."""
    _shards, url, _limits = await client.http.get_bot_gateway()
    gateway = yarl.URL(url)
    DiscordWebSocket.DEFAULT_GATEWAY = gateway
    return gateway


def point_discord_at(client: discord.Client, api_base: str) -> None:
    """Send the client's REST calls to api_base and take its gateway URL from GET {api_base}/gateway/bot.

    Call before `client.start()`/`login()`. Process-wide (as discord.py's own settings are): undo with
    `restore_public_discord()`.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    original_connect = client.connect

    async def connect(*, reconnect: bool = True) -> Any:
        await use_gateway_from_api(client)
        return await original_connect(reconnect=reconnect)

    client.connect = connect  # type: ignore[method-assign]


def restore_public_discord() -> None:
    """Point discord.py back at discord.com and the public gateway."""
    discord.http.Route.BASE = PUBLIC_API_BASE
    DiscordWebSocket.DEFAULT_GATEWAY = PUBLIC_GATEWAY
