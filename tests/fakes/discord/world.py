"""The standard test world that the fixtures build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import MANAGE_GUILD, FakeChannel, FakeGuild, FakeMember, FakeRole

if TYPE_CHECKING:
    from .server import FakeDiscord

GUILD_ID = 1000


@dataclass
class DiscordWorld:
    """The standard test world: one guild, a text channel, a member and a moderator."""

    fake: FakeDiscord
    guild: FakeGuild
    channel: FakeChannel
    member: FakeMember
    moderator: FakeMember
    moderator_role: FakeRole


def build_world(fake: FakeDiscord) -> DiscordWorld:
    """Populate a fake with the standard world (guild 1000, #general, alice, mod-bob with Manage Server)."""
    if GUILD_ID in fake.guilds:
        raise RuntimeError("the standard world is already built")
    guild = fake.add_guild(GUILD_ID, "Hailuo Test Server")
    channel = fake.add_channel(guild, "general")
    moderator_role = fake.add_role(guild, "Moderators", permissions=MANAGE_GUILD)
    member = fake.add_member(guild, "alice")
    moderator = fake.add_member(guild, "mod-bob", roles=[moderator_role])
    return DiscordWorld(fake, guild, channel, member, moderator, moderator_role)
