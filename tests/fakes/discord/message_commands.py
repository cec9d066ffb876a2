"""Members' own messages and message commands (Apps menu on a message: interaction type 2, command type 3).

post_as(fake, member, channel, "look", [png])         -> a visible message by that member, announced to the bot
await send_message_command(fake, "Animate image", msg, user=member) -> the interaction handle
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .interactions import APPLICATION_COMMAND, InteractionHandle
from .models import FakeAttachment, FakeChannel, FakeMember, FakeMessage, FakeUser, guess_content_type

if TYPE_CHECKING:
    from .server import FakeDiscord

MESSAGE_COMMAND = 3


async def post_as(
    fake: FakeDiscord,
    user: FakeMember | FakeUser | int,
    channel: FakeChannel | int,
    content: str = "",
    files: Sequence[tuple[str, bytes]] = (),
) -> FakeMessage:
    """A message a member posts (with attachments, served by the fake's CDN), announced as MESSAGE_CREATE."""
    ch = channel if isinstance(channel, FakeChannel) else fake.channels[channel]
    author = fake._user_of(user)
    attachments: list[FakeAttachment] = [
        fake._new_attachment(name, data, guess_content_type(name)) for name, data in files
    ]
    message = FakeMessage(
        id=fake.ids.next(),
        channel_id=ch.id,
        guild_id=ch.guild_id,
        author=author,
        content=content,
        attachments=attachments,
    )
    fake.rest._store(message)
    await fake.rest._announce_message("MESSAGE_CREATE", message)
    fake._notify()
    return message


def registered_message_command(fake: FakeDiscord, name: str, guild_id: int | None) -> dict[str, Any] | None:
    for scope in (guild_id, None):
        for command in fake.commands.get(scope, []):
            if command["name"] == name and command.get("type") == MESSAGE_COMMAND:
                return command
    return None


async def send_message_command(
    fake: FakeDiscord,
    name: str,
    target: FakeMessage,
    *,
    user: FakeMember | FakeUser | int,
    locale: str = "en-US",
) -> InteractionHandle:
    """Use a message command from a message's Apps menu, as Discord sends it (target_id + resolved.messages)."""
    if target.deleted:
        raise LookupError(f"message {target.id} was deleted")
    g = fake.guilds.get(target.guild_id) if target.guild_id else None
    command = registered_message_command(fake, name, g.id if g else None)
    if command is None:
        known = [(c["name"], c.get("type")) for cmds in fake.commands.values() for c in cmds]
        raise LookupError(f"message command {name!r} is not registered (registered: {known})")
    data: dict[str, Any] = {
        "id": command["id"],
        "name": name,
        "type": MESSAGE_COMMAND,
        "target_id": str(target.id),
        "resolved": {"messages": {str(target.id): target.payload(fake.users)}},
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    ch = fake.channels[target.channel_id]
    return await fake._send_interaction(APPLICATION_COMMAND, data, user=user, guild=g, channel=ch, locale=locale)
