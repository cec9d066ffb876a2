"""The fake Discord against the real discord.py client: connect, slash command, buttons, modals, faults."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import EPHEMERAL, FakeDiscord, load_spec, point_discord_at
from tests.fakes.discord.models import INTENT_GUILD_MESSAGES, INTENT_GUILDS
from tests.fakes.discord.world import DiscordWorld
from tests.fakes.images import png_bytes

GUILD = discord.Object(id=1000)


class RemixModal(discord.ui.Modal, title="Remix"):
    prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="Prompt", custom_id="remix:prompt", max_length=2000
    )
    note = discord.ui.Label(text="Note", component=discord.ui.TextInput(custom_id="remix:note", required=False))

    def __init__(self, bot: EchoBot, prompt: str) -> None:
        super().__init__(custom_id="remix:modal")
        self.bot = bot
        self.prompt.default = prompt

    async def on_submit(self, interaction: discord.Interaction) -> None:
        note = self.note.component
        assert isinstance(note, discord.ui.TextInput)
        self.bot.submitted.append((self.prompt.value, note.value))
        await interaction.response.send_message(f"remixing: {self.prompt.value}", ephemeral=True)


class EchoView(discord.ui.View):
    """A persistent view: its button works on any message, as after a restart."""

    def __init__(self, bot: EchoBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Remix", style=discord.ButtonStyle.primary, custom_id="echo:remix")
    async def remix(self, interaction: discord.Interaction, button: discord.ui.Button[EchoView]) -> None:
        assert interaction.message is not None
        await interaction.response.send_modal(RemixModal(self.bot, interaction.message.content[-20:]))


class EchoBot(commands.Bot):
    """A tiny bot shaped like hailuo-bot: slash command, ephemeral defer, public post with a file and a button."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.05)
        self.submitted: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self.ready_event = asyncio.Event()

        @app_commands.command(name="echo", description="Echo a prompt and an optional image")
        @app_commands.describe(prompt="What to say", image="An image to echo back")
        async def echo(
            interaction: discord.Interaction,
            prompt: app_commands.Range[str, 2, 2000],
            image: discord.Attachment | None = None,
        ) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            data = await image.read() if image is not None else b""
            await interaction.followup.send(f"echoing {len(data)} bytes", ephemeral=True)
            assert isinstance(interaction.channel, discord.TextChannel)
            files = [discord.File(io.BytesIO(data), filename="echo.png")] if data else []
            await interaction.channel.send(
                f"{interaction.user.mention} asked: {prompt}",
                files=files,
                view=EchoView(self),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            note = discord.File(io.BytesIO(b"prompt: " + prompt.encode()), filename="note.txt")
            await interaction.followup.send("posted", file=note, ephemeral=True)
            await interaction.edit_original_response(content=f"echoed {len(data)} bytes")

        limits = app_commands.Group(
            name="limits", description="Spend limits", default_permissions=discord.Permissions(manage_guild=True)
        )

        @limits.command(name="set", description="Set a limit")
        async def set_limit(
            interaction: discord.Interaction,
            period: Literal["day", "week", "month"],
            amount: app_commands.Range[float, 0, 1000],
            member: discord.Member | None = None,
            role: discord.Role | None = None,
            channel: discord.TextChannel | None = None,
        ) -> None:
            perms = interaction.permissions.manage_guild
            target = member or role or channel
            await interaction.response.send_message(
                f"{period} limit {amount:.2f} for {target!r} (manage_guild={perms})", ephemeral=True
            )

        self.tree.add_command(echo, guild=GUILD)
        self.tree.add_command(limits, guild=GUILD)
        self.tree.on_error = self._tree_error  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        self.add_view(EchoView(self))
        await self.tree.sync(guild=GUILD)

    async def on_ready(self) -> None:
        self.ready_event.set()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Skip discord.py's 5 s pause before a re-IDENTIFY (a guard for Discord's identify rate limit)."""

    async def _tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        self.errors.append(error)


@pytest_asyncio.fixture
async def bot(fake_discord: FakeDiscord) -> AsyncIterator[EchoBot]:
    client = EchoBot()
    point_discord_at(client, fake_discord.api_base)
    task = asyncio.create_task(client.start(fake_discord.token))
    try:
        await asyncio.wait_for(client.ready_event.wait(), 10)
        yield client
    finally:
        await client.close()
        await task
    assert client.errors == []


async def test_validator_catches_bad_bodies(fake_discord: FakeDiscord, discord_world: DiscordWorld) -> None:
    spec = load_spec()
    ok = {"content": "hi", "allowed_mentions": {"parse": [], "users": [123]}, "attachments": [{"id": 0}]}
    assert spec.check_request("POST", "/channels/1/messages", content_type=None, body=ok, has_body=True, query={}) == []

    too_long = spec.check_request(
        "POST", "/channels/1/messages", content_type=None, body={"content": "x" * 2001}, has_body=True, query={}
    )
    assert any("$.content" in v and "2000" in v for v in too_long)
    bad_mentions = spec.check_request(
        "POST",
        "/webhooks/1/tok",
        content_type=None,
        body={"content": "hi", "allowed_mentions": {"parse": "users"}},
        has_body=True,
        query={"wait": "maybe"},
    )
    assert any("$.allowed_mentions.parse" in v and "not of type 'array'" in v for v in bad_mentions)
    assert any("query wait='maybe'" in v for v in bad_mentions)
    bad_callback = spec.check_request(
        "POST",
        "/interactions/1/tok/callback",
        content_type=None,
        body={"type": 4, "data": {"embeds": [{"title": "t" * 300}]}},
        has_body=True,
        query={},
    )
    assert any("$.data.embeds[0].title" in v for v in bad_callback), bad_callback

    # And through HTTP: a bad body sent to the fake lands in fake.violations (and Discord's 400).
    url = f"{fake_discord.api_base}/channels/{discord_world.channel.id}/messages"
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"content": "x" * 2001}, headers=headers) as r,
    ):
        assert r.status == 400
        assert (await r.json())["code"] == 50035
    assert fake_discord.violations and all("/channels/{channel_id}/messages" in v for v in fake_discord.violations)


async def test_bot_connects_syncs_and_caches_the_guild(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    guild = bot.get_guild(discord_world.guild.id)
    assert guild is not None and guild.name == "Hailuo Test Server"
    assert guild.get_channel(discord_world.channel.id) is not None
    assert guild.get_role(discord_world.moderator_role.id) is not None
    assert guild.me is not None and guild.filesize_limit == 10 * 1024 * 1024
    assert bot.application_id == fake_discord.application_id

    session = fake_discord.session
    assert session is not None and session.intents == INTENT_GUILDS | INTENT_GUILD_MESSAGES
    # zlib-stream, or zstd-stream when a zstd decoder is installed: the fake speaks what the client asks for.
    wanted = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    assert f"compress={wanted}" in fake_discord.gateway_urls[0]
    (sync,) = fake_discord.requests_to("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    assert sorted(c["name"] for c in sync.json) == ["echo", "limits"]
    (echo,) = [c for c in fake_discord.commands[discord_world.guild.id] if c["name"] == "echo"]
    assert [o["name"] for o in echo["options"]] == ["prompt", "image"]
    assert [r.route for r in fake_discord.requests[:3]] == [
        "GET /users/@me",
        "GET /oauth2/applications/@me",
        "PUT /applications/{application_id}/guilds/{guild_id}/commands",
    ]
    assert fake_discord.violations == []


async def test_slash_command_button_and_modal_round_trip(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    image = fake_discord.add_attachment("cat.png", png_bytes(32, 24))
    member = discord_world.member

    command = await fake_discord.send_command("echo", {"prompt": "a cat surfing", "image": image}, user=member)
    await command.wait_deferred()
    assert command.ephemeral
    first, second = await command.wait_followups(2)
    # The first followup after a deferral fills in the "thinking" message: it is the original response.
    assert first is command.original and first.ephemeral and second.ephemeral
    assert second.content == "posted" and second.attachments[0].data == b"prompt: a cat surfing"
    await command.wait_original(lambda m: m.content == f"echoed {image.size} bytes" and m.edited_timestamp is not None)

    post = await fake_discord.wait_for_message(discord_world.channel, lambda m: bool(m.attachments))
    assert post.content == f"{member.mention} asked: a cat surfing"
    assert post.attachments[0].data == image.data and post.attachments[0].filename == "echo.png"
    assert post.pinged_user_ids == [] and not post.flags & EPHEMERAL
    assert post.custom_ids() == ["echo:remix"]
    assert [r.route for r in fake_discord.requests if r.template == "CDN /attachments"] == ["GET CDN /attachments"]

    click = await fake_discord.click(post, "echo:remix", user=member)
    modal = await click.wait_modal()
    assert modal["custom_id"] == "remix:modal" and modal["title"] == "Remix"

    submit = await fake_discord.submit_modal(values={"remix:prompt": "a dog surfing"}, handle=click)
    assert await submit.wait_response() == 4
    reply = await submit.wait_original()
    assert reply.content == "remixing: a dog surfing" and reply.ephemeral
    assert bot.submitted == [("a dog surfing", "")]
    assert fake_discord.unknown_routes == []
    assert fake_discord.violations == []


async def test_subcommands_and_resolved_options(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    (limits,) = [c for c in fake_discord.commands[discord_world.guild.id] if c["name"] == "limits"]
    assert limits["default_member_permissions"] == str(1 << 5)
    options = {"period": "week", "amount": 2.5, "member": discord_world.member, "role": discord_world.moderator_role}
    handle = await fake_discord.send_command("limits set", options, user=discord_world.moderator)
    reply = await handle.wait_original()
    assert reply.content.startswith("week limit 2.50 for <Member id=" + str(discord_world.member.id))
    assert reply.content.endswith("(manage_guild=True)")

    handle = await fake_discord.send_command(
        "limits set", {"period": "day", "amount": 0, "channel": discord_world.channel}, user=discord_world.moderator
    )
    assert "<TextChannel id=" + str(discord_world.channel.id) in (await handle.wait_original()).content
    with pytest.raises(ValueError, match="not one of the choices"):
        await fake_discord.send_command("limits set", {"period": "year", "amount": 1}, user=discord_world.moderator)
    assert fake_discord.violations == []


async def test_client_side_rules_are_enforced_by_the_fake(fake_discord: FakeDiscord, bot: EchoBot) -> None:
    world = fake_discord.world
    assert world is not None
    with pytest.raises(ValueError, match="under 2"):
        await fake_discord.send_command("echo", {"prompt": "x"}, user=world.member)
    with pytest.raises(ValueError, match="unknown option"):
        await fake_discord.send_command("echo", {"prompt": "xy", "colour": "red"}, user=world.member)
    with pytest.raises(LookupError, match="not registered"):
        await fake_discord.send_command("video", {"prompt": "xy"}, user=world.member)


async def test_enforce_nonce_returns_the_earlier_message(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("clip ready", nonce="job-42-part-1")
    again = await channel.send("clip ready", nonce="job-42-part-1")
    other = await channel.send("clip ready")
    assert again.id == first.id and other.id != first.id
    assert [m.id for m in fake_discord.channel_messages(discord_world.channel)] == [first.id, other.id]
    assert fake_discord.violations == []


async def test_threads_dms_history_and_upload_limits(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    start = await channel.send("job 1: queued")
    thread = await start.create_thread(name="job 1")
    assert thread.id == start.id and fake_discord.channels[thread.id].parent_id == channel.id
    await thread.send("discuss here")
    private = await channel.create_thread(name="team", type=discord.ChannelType.private_thread)
    assert fake_discord.channels[private.id].type == 12
    assert [m.content for m in fake_discord.channel_messages(thread.id)] == ["discuss here"]
    history = [m.content async for m in channel.history(limit=5)]
    assert history == ["job 1: queued"]

    alice = await bot.fetch_user(discord_world.member.id)
    dm = await alice.send("your clip could not be posted")
    dm_channel = fake_discord.dm_channel(discord_world.member)
    assert dm_channel is not None and dm.channel.id == dm_channel.id
    discord_world.member.user.dms_closed = True
    with pytest.raises(discord.Forbidden) as closed:
        await alice.send("again")
    assert closed.value.code == 50007

    too_big = discord.File(io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), filename="clip.mp4")
    with pytest.raises(discord.HTTPException) as large:
        await channel.send(file=too_big)
    assert large.value.status == 413 and large.value.code == 40005
    updated = asyncio.ensure_future(bot.wait_for("guild_update"))
    await fake_discord.set_premium_tier(discord_world.guild, 2)
    await asyncio.wait_for(updated, 5)
    assert channel.guild.filesize_limit == 50 * 1024 * 1024
    assert fake_discord.violations == []


async def test_forbidden_and_deleted_channels_raise(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    created = asyncio.ensure_future(bot.wait_for("guild_channel_create", check=lambda c: c.name == "locked"))
    locked = fake_discord.add_channel(discord_world.guild, "locked")
    channel = await asyncio.wait_for(created, 5)
    assert isinstance(channel, discord.TextChannel)
    fake_discord.forbid_posting(locked)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("hello")
    assert forbidden.value.code == 50013 and forbidden.value.status == 403

    await fake_discord.delete_channel(locked, notify=False)
    with pytest.raises(discord.NotFound) as gone:
        await channel.send("hello")
    assert gone.value.code == 10003
    assert fake_discord.violations == []


async def test_rate_limit_fault_is_retried_and_gateway_reconnects(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    fake_discord.fail_next("POST", "/channels/{channel_id}/messages", status=429, retry_after=0.01)
    sent = await channel.send("after a 429")
    statuses = [r.status for r in fake_discord.requests_to("POST", "/channels/{channel_id}/messages")]
    assert statuses == [429, 200] and sent.content == "after a 429"

    await fake_discord.disconnect(4000)  # a dropped socket: discord.py RESUMEs
    await fake_discord.wait_until(lambda: fake_discord.connected and fake_discord.sessions[-1].resumes == 1)
    await fake_discord.invalidate_session()  # not resumable: discord.py IDENTIFYs again
    await fake_discord.wait_until(lambda: fake_discord.identify_count == 2 and fake_discord.connected)

    command = await fake_discord.send_command("echo", {"prompt": "still here"}, user=discord_world.member)
    await command.wait_followups(2)
    assert fake_discord.violations == []


async def test_fault_plan_answers_429s_in_discords_shape_and_records_each_fault(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    route = fake_discord.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=429, retry_after=0.2)
    await channel.send("after a route 429")
    glob = fake_discord.faults.add(
        method="POST", path_regex=r"/channels/\d+/messages", status=429, retry_after=0.2, global_=True
    )
    await channel.send("after a global 429")
    [r] = fake_discord.faults.served_for(route)
    [g] = fake_discord.faults.served_for(glob)
    assert r.request.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.2,
        "global": False,
        "code": 0,
    }
    assert g.request.response["global"] is True and r.request.status == g.request.status == 429
    assert fake_discord.faults.pending == [] and [s.status for s in fake_discord.faults.served] == [429, 429]
    # What the fake answered, as the bot's HTTP client saw it
    async with aiohttp.ClientSession() as http:
        fake_discord.faults.add(method="GET", path_regex=r"/channels/\d+", status=429, retry_after=0.2, scope="shared")
        fake_discord.faults.add(method="GET", path_regex=r"/channels/\d+", status=429, retry_after=0.2, global_=True)
        url = f"{fake_discord.api_base}/channels/{discord_world.channel.id}"
        auth = {"Authorization": f"Bot {fake_discord.token}"}
        async with http.get(url, headers=auth) as shared:
            assert shared.status == 429 and shared.headers["Retry-After"] == "1"
            assert shared.headers["X-RateLimit-Scope"] == "shared" and shared.headers["X-RateLimit-Remaining"] == "0"
            assert shared.headers["X-RateLimit-Reset-After"] == "0.200" and "X-RateLimit-Bucket" in shared.headers
            assert "X-RateLimit-Global" not in shared.headers and shared.headers["Via"]
        async with http.get(url, headers=auth) as global_:
            assert global_.headers["X-RateLimit-Global"] == "true" and global_.headers["X-RateLimit-Scope"] == "global"
            assert "X-RateLimit-Bucket" not in global_.headers
    assert fake_discord.violations == []


async def test_apply_then_fail_creates_the_message_and_the_nonce_keeps_the_retry_single(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    fault = fake_discord.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=503, apply=True)
    with pytest.raises(discord.DiscordServerError):  # discord.py does not retry a 503: the caller does
        await channel.send("made, then 503", nonce="n-1")
    [served] = fake_discord.faults.served_for(fault)
    assert served.applied and served.request.fault is fault
    again = await channel.send("made, then 503", nonce="n-1")  # enforce_nonce: the same message comes back
    assert [m.id for m in fake_discord.channel_messages(discord_world.channel)] == [again.id]
    assert fake_discord.violations == []


async def test_resume_replays_missed_events_in_order_and_ended_sessions_identify_again(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    session = fake_discord.session
    assert session is not None
    fake_discord.hold_gateway()
    fake_discord.drop()  # no close frame: discord.py sees an abnormal close and RESUMEs
    await fake_discord.wait_until(lambda: fake_discord.gateway_waiting > 0, what="a reconnect attempt")
    command = await fake_discord.send_command("echo", {"prompt": "sent while away"}, user=discord_world.member)
    missed = session.seq
    fake_discord.release_gateway()
    await command.wait_followups(2)
    assert session.resumes == 1 and fake_discord.identify_count == 1 and missed in session.replayed
    assert session.replayed == sorted(session.replayed)

    fake_discord.hold_gateway()
    await fake_discord.disconnect(4009)  # session timed out: the RESUME is refused with op 9 and it IDENTIFYs
    await fake_discord.wait_until(lambda: fake_discord.gateway_waiting > 0, what="a reconnect attempt")
    assert session.invalid and session.closes[-1] == 4009
    fake_discord.release_gateway()
    await fake_discord.wait_until(lambda: fake_discord.identify_count == 2 and fake_discord.connected)
    assert session.resumes == 1 and fake_discord.session is not session
    assert [p["op"] for p in fake_discord.gateway_received if p["op"] in (2, 6)] == [2, 6, 6, 2]
    assert fake_discord.violations == []


async def test_unknown_routes_are_recorded(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, bot: EchoBot
) -> None:
    channel = bot.get_channel(discord_world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.NotFound):
        await channel.typing()
    assert [r.route for r in fake_discord.unknown_routes] == ["POST /channels/{channel_id}/typing"]
