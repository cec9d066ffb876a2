r"""A loopback fake of Discord (REST, gateway, CDN) for end-to-end tests with the real discord.py client.

fake = await FakeDiscord().start()              # or the `fake_discord` fixture (fixtures.py)
point_discord_at(bot, fake.api_base)            # Route.BASE + gateway URL from GET /gateway/bot
task = asyncio.create_task(bot.start(fake.token))
h = await fake.send_command("video", {"prompt": "a cat"}, user=member)
await h.wait_deferred(); [msg] = await h.wait_followups(1)
assert fake.violations == []                    # every request body checked against the OpenAPI spec
fake.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=429, retry_after=0.3)  # faults.py
"""

from __future__ import annotations

from .connect import point_discord_at, restore_public_discord, use_gateway_from_api
from .faults import DiscordFault, FaultPlan, ServedFault
from .interactions import AttachmentRef, InteractionHandle
from .models import (
    ADMINISTRATOR,
    ATTACH_FILES,
    EPHEMERAL,
    MANAGE_GUILD,
    SEND_MESSAGES,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Overwrite,
)
from .openapi import EXTRA_RULES, RELAXATIONS, OpenAPISpec, load_spec
from .rest import DiscordError
from .server import FakeDiscord, RecordedRequest

__all__ = [
    "ADMINISTRATOR",
    "ATTACH_FILES",
    "EPHEMERAL",
    "EXTRA_RULES",
    "MANAGE_GUILD",
    "RELAXATIONS",
    "SEND_MESSAGES",
    "AttachmentRef",
    "DiscordError",
    "DiscordFault",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "FaultPlan",
    "InteractionHandle",
    "OpenAPISpec",
    "Overwrite",
    "RecordedRequest",
    "ServedFault",
    "load_spec",
    "point_discord_at",
    "restore_public_discord",
    "use_gateway_from_api",
]
