"""FakeDiscord: one loopback aiohttp server faking Discord's REST API, gateway and attachment CDN."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import gateway as gw
from .faults import DiscordFault, FaultPlan
from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    InteractionHandle,
    modal_submit_components,
    option_payloads,
)
from .models import (
    ADMINISTRATOR,
    CREATE_PUBLIC_THREADS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DM,
    EMBED_LINKS,
    FILESIZE_BY_PREMIUM_TIER,
    GUILD_TEXT,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    MANAGE_THREADS,
    PRIVILEGED_INTENTS,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Overwrite,
    Snowflakes,
    guess_content_type,
)
from .openapi import OpenAPISpec, load_spec
from .rest import RestAPI

if TYPE_CHECKING:
    from .world import DiscordWorld

API_PREFIX = "/api/v10"
DEFAULT_BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | EMBED_LINKS | MANAGE_THREADS | CREATE_PUBLIC_THREADS
APPLICATION_FLAGS = 1 << 23  # APPLICATION_COMMAND_BADGE


@dataclass
class Part:
    """One part of a multipart request."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def text(self) -> str:
        """Return the part decoded as UTF-8."""
        return self.data.decode()


@dataclass
class RecordedRequest:
    """Everything the bot sent in one HTTP request, and what the fake answered."""

    method: str
    path: str  # relative to /api/v10 for REST calls, absolute otherwise
    template: str | None
    query: dict[str, str]
    headers: dict[str, str]
    content_type: str | None
    json: Any = None  # the JSON body, or the parsed payload_json of a multipart body
    parts: list[Part] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    violations: list[str] = field(default_factory=list)
    unknown_route: bool = False
    fault: DiscordFault | None = None  # the planned fault that answered it, if any

    @property
    def files(self) -> list[Part]:
        """Return the uploaded file parts (files[n])."""
        return [p for p in self.parts if p.filename is not None]

    @property
    def route(self) -> str:
        """Return 'METHOD template' (or the raw path when no route matched)."""
        return f"{self.method} {self.template or self.path}"

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


class FakeDiscord:
    """A loopback Discord: REST under /api/v10, a gateway at /gateway and a CDN at /attachments."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token.fake.fake",
        app_name: str = "Hailuo Test Bot",
        spec: OpenAPISpec | None = None,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        self.token = token
        self.ids = Snowflakes()
        self.application_id = self.ids.next()
        self.bot_user = FakeUser(id=self.ids.next(), username=app_name.lower().replace(" ", "-"), bot=True)
        self.app_name = app_name
        self.owner = FakeUser(id=self.ids.next(), username="app-owner")
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user, self.owner.id: self.owner}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.channel_message_ids: dict[int, list[int]] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None = global) -> commands
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self.interactions: dict[int, InteractionHandle] = {}
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.gateway_urls: list[str] = []
        self.sessions: list[gw.GatewaySession] = []
        self.connections: list[gw.GatewayConnection] = []
        self.identify_count = 0
        self.shard_count = 1  # what GET /gateway/bot recommends
        self.gateway_open = asyncio.Event()  # cleared by hold_gateway(): new connections wait
        self.gateway_open.set()
        self.gateway_waiting = 0  # connections waiting for release_gateway()
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.allowed_privileged_intents = PRIVILEGED_INTENTS
        self.resume_enabled = True
        self.nonce_window_s = 300.0
        self.spec = spec
        self.faults = FaultPlan()
        self.world: DiscordWorld | None = None  # set by the fixtures' build_world()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.rest = RestAPI(self)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        """Bind 127.0.0.1 on a free port and serve."""
        if self.spec is None:
            self.spec = await asyncio.to_thread(load_spec)
        app = web.Application(client_max_size=1024 * 1024 * 1024)
        app.router.add_get("/gateway", self._handle_gateway)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._handle_cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.rest.handle)
        app.router.add_route("*", "/{tail:.*}", self._handle_stray)
        # A bot reconnecting while the fake closes would otherwise hold the shutdown for aiohttp's 60 s grace.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Close every gateway connection and stop serving."""
        self.gateway_open.set()
        for conn in list(self.connections):
            await conn.close(1001, "Fake Discord is shutting down.")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """Return http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """Return the REST base to give discord.py (Route.BASE)."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Return the websocket URL that GET /gateway/bot announces."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    # -- building the world ----------------------------------------------------------------------

    def add_user(self, username: str, *, id: int | None = None, bot: bool = False) -> FakeUser:
        """Create a user account (not yet a member of any guild)."""
        user = FakeUser(id=id or self.ids.next(), username=username, global_name=username.title(), bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        id: int | None = None,
        name: str = "Test Server",
        *,
        premium_tier: int = 0,
        owner: FakeUser | None = None,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
    ) -> FakeGuild:
        """Create a guild with @everyone, the bot's managed role, the bot and the owner as members."""
        guild_id = id or self.ids.next()
        owner = owner or self.add_user(f"owner-{guild_id}")
        guild = FakeGuild(id=guild_id, name=name, owner_id=owner.id, premium_tier=premium_tier)
        guild.roles[guild_id] = FakeRole(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=everyone_permissions
        )
        bot_role = FakeRole(
            id=self.ids.next(),
            guild_id=guild_id,
            name=self.app_name,
            permissions=bot_permissions,
            position=1,
            managed=True,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(user=self.bot_user, guild_id=guild_id, roles=[bot_role.id])
        guild.members[owner.id] = FakeMember(user=owner, guild_id=guild_id)
        self.guilds[guild_id] = guild
        self._announce(
            "GUILD_CREATE", lambda s: self._guild_create_payload(guild, s.intents), INTENT_GUILDS, guild_id=guild_id
        )
        return guild

    def add_channel(
        self,
        guild: FakeGuild | int,
        name: str,
        *,
        type: int = GUILD_TEXT,
        id: int | None = None,
        parent: FakeChannel | int | None = None,
        overwrites: Iterable[Overwrite] = (),
        topic: str | None = None,
    ) -> FakeChannel:
        """Create a guild channel (or a thread when type is 11/12 and parent is given)."""
        g = self._guild(guild)
        channel = FakeChannel(
            id=id or self.ids.next(),
            type=type,
            name=name,
            guild_id=g.id,
            position=len(g.channels),
            parent_id=_id_of(parent),
            overwrites=list(overwrites),
            topic=topic,
            owner_id=self.bot_user.id if type in (11, 12) else None,
        )
        g.channels[channel.id] = channel
        self.channels[channel.id] = channel
        event = "THREAD_CREATE" if channel.is_thread else "CHANNEL_CREATE"
        self._announce(event, lambda s: channel.payload(), INTENT_GUILDS, guild_id=g.id)
        return channel

    def add_role(self, guild: FakeGuild | int, name: str, *, permissions: int = 0, id: int | None = None) -> FakeRole:
        """Create a role."""
        g = self._guild(guild)
        role = FakeRole(
            id=id or self.ids.next(), guild_id=g.id, name=name, permissions=permissions, position=len(g.roles)
        )
        g.roles[role.id] = role
        self._announce(
            "GUILD_ROLE_CREATE", lambda s: {"guild_id": str(g.id), "role": role.payload()}, INTENT_GUILDS, guild_id=g.id
        )
        return role

    def add_member(
        self,
        guild: FakeGuild | int,
        user: FakeUser | str,
        *,
        roles: Iterable[FakeRole | int] = (),
        permissions: int | None = None,
        nick: str | None = None,
        id: int | None = None,
    ) -> FakeMember:
        """Add a user (or a new user of that name) to a guild with roles.

        `permissions` overrides only what interactions report as member.permissions; prefer roles.
        """
        g = self._guild(guild)
        account = user if isinstance(user, FakeUser) else self.add_user(user, id=id)
        member = FakeMember(
            user=account,
            guild_id=g.id,
            roles=[_id_of(r) or 0 for r in roles],
            nick=nick,
            permissions_override=permissions,
        )
        g.members[account.id] = member
        self._announce(
            "GUILD_MEMBER_ADD",
            lambda s: {**member.payload(), "guild_id": str(g.id)},
            INTENT_GUILD_MEMBERS,
            guild_id=g.id,
        )
        return member

    def add_attachment(self, filename: str, data: bytes, content_type: str | None = None) -> FakeAttachment:
        """Register a file a member attaches to a command; the CDN serves its bytes."""
        attachment = self._new_attachment(filename, data, content_type or guess_content_type(filename))
        attachment.ephemeral = True  # command option attachments are ephemeral uploads
        return attachment

    async def update_member(
        self, guild: FakeGuild | int, member: FakeMember | int, *, roles: Iterable[FakeRole | int] | None = None
    ) -> FakeMember:
        """Change a member's roles and send GUILD_MEMBER_UPDATE."""
        g = self._guild(guild)
        m = g.members[_id_of(member) or 0]
        if roles is not None:
            m.roles = [_id_of(r) or 0 for r in roles]
        data = {**m.payload(), "guild_id": str(g.id)}
        await self.dispatch("GUILD_MEMBER_UPDATE", data, intent=INTENT_GUILD_MEMBERS)
        return m

    async def set_premium_tier(self, guild: FakeGuild | int, tier: int) -> None:
        """Change a guild's boost tier (and so its upload limit) and send GUILD_UPDATE."""
        g = self._guild(guild)
        g.premium_tier = tier
        await self.dispatch("GUILD_UPDATE", g.payload(), intent=INTENT_GUILDS, guild_id=g.id)

    async def delete_channel(self, channel: FakeChannel | int, *, notify: bool = True) -> None:
        """Delete a channel: REST calls on it answer 404 Unknown Channel; CHANNEL_DELETE unless notify=False."""
        ch = self.channels.pop(_id_of(channel) or 0)
        if ch.guild_id is not None:
            self.guilds[ch.guild_id].channels.pop(ch.id, None)
        if notify:
            event = "THREAD_DELETE" if ch.is_thread else "CHANNEL_DELETE"
            data = ch.payload()
            if ch.is_thread:
                data = {k: data[k] for k in ("id", "guild_id", "parent_id", "type")}
            await self.dispatch(event, data, intent=INTENT_GUILDS)

    def forbid_posting(self, channel: FakeChannel | int, forbidden: bool = True) -> None:
        """Make posting in a channel answer 403 Missing Permissions (50013); the bot's cache is not told."""
        self.channels[_id_of(channel) or 0].forbid_post = forbidden

    def fail_next(
        self,
        method: str,
        template: str,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: float = 0.01,
        is_global: bool = False,
    ) -> None:
        """Answer the next `times` requests to a route (spec template, e.g. /channels/{channel_id}/messages).

        Shorthand for `faults.add(method=..., template=..., ...)`, which also takes a path regex, a predicate on
        the request, the 429 scope and "apply then fail".
        """
        self.faults.add(
            method=method, template=template, status=status, times=times, retry_after=retry_after, global_=is_global
        )

    # -- gateway control ---------------------------------------------------------------------------

    @property
    def session(self) -> gw.GatewaySession | None:
        """Return the newest gateway session, if the bot ever identified."""
        return self.sessions[-1] if self.sessions else None

    def session_for(self, guild_id: int | None) -> gw.GatewaySession | None:
        """The newest session whose shard receives this guild's events (None: a DM, shard 0)."""
        return next((s for s in reversed(self.sessions) if s.covers(guild_id)), None)

    @property
    def connected(self) -> bool:
        """Tell whether the bot has a live, identified gateway connection."""
        s = self.session
        return s is not None and s.live

    def live_shards(self) -> set[tuple[int, int]]:
        """(shard id, shard count) of every live, identified connection (several bot processes may share them)."""
        return {s.shard for s in self.sessions if s.live}

    async def wait_until_connected(self, timeout: float = 10.0) -> None:
        """Wait for the bot to IDENTIFY (or RESUME) and receive READY and every GUILD_CREATE."""
        await self.wait_until(lambda: self.connected, timeout, "the bot to connect to the gateway")

    async def dispatch(
        self, event: str, data: dict[str, Any], *, intent: int | None = None, guild_id: int | None = None
    ) -> None:
        """Send a gateway event to the bot (kept for RESUME while it is disconnected): to the shard of its guild."""
        if guild_id is None and data.get("guild_id") is not None:
            guild_id = int(data["guild_id"])
        s = self.session_for(guild_id)
        if s is None:
            return
        if intent is not None and not s.intents & intent:
            return
        if s.connection is not None and not s.connection.ws.closed:
            await s.connection.dispatch(event, data)
        else:
            s.seq += 1
            s.sent.append((s.seq, {"op": gw.OP_DISPATCH, "t": event, "s": s.seq, "d": data}))

    async def disconnect(self, code: int = 4000) -> None:
        """Close the bot's gateway socket from the server side.

        4000 (or any code but those below) leaves the session resumable: discord.py RESUMEs and gets every event
        it missed replayed. 4007 (invalid seq) and 4009 (session timed out) end the session: discord.py still tries
        to RESUME, is answered INVALID_SESSION (d=false) and IDENTIFYs again, and what it missed is gone.
        """
        s = self.session
        if s is not None and s.connection is not None:
            await s.connection.close(code, "Fake Discord closed the connection.")

    def drop(self) -> None:
        """Cut the bot's gateway TCP connection without a close frame (an abnormal 1006 close): it RESUMEs."""
        s = self.session
        if s is not None and s.connection is not None:
            s.connection.abort()

    def hold_gateway(self) -> None:
        """Keep new gateway connections waiting (before the websocket upgrade) until release_gateway().

        With it a test can act while the bot is disconnected: `fake.gateway_waiting` tells that it is trying to
        reconnect; events dispatched meanwhile are kept for a RESUME.
        """
        self.gateway_open.clear()

    def release_gateway(self) -> None:
        """Let held and new gateway connections through."""
        self.gateway_open.set()

    async def send_reconnect(self) -> None:
        """Ask the bot to reconnect (op 7)."""
        s = self.session
        if s is not None and s.connection is not None:
            await s.connection.send({"op": gw.OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self) -> None:
        """Invalidate the session (op 9, d=false): it cannot be resumed, the bot must IDENTIFY again."""
        s = self.session
        if s is not None and s.connection is not None:
            s.invalid = True
            await s.connection.send({"op": gw.OP_INVALID_SESSION, "d": False, "s": None, "t": None})

    # -- interactions ------------------------------------------------------------------------------

    async def send_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeMember | FakeUser | int,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        locale: str = "en-US",
        require_registered: bool = True,
    ) -> InteractionHandle:
        """Run a slash command as a member would: name may be 'group sub' or 'cmd sub'."""
        path = name.split()
        g, ch = self._where(guild, channel, user)
        command = self._registered(path[0], g.id if g else None)
        if command is None and require_registered:
            known = [c["name"] for cmds in self.commands.values() for c in cmds]
            raise LookupError(f"/{path[0]} is not registered with the fake (registered: {known})")
        opts, resolved = option_payloads(command, path, dict(options or {}), g, self)
        data: dict[str, Any] = {
            "id": command["id"] if command else str(self.ids.next()),
            "name": path[0],
            "type": 1,
        }
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if command is not None and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._send_interaction(APPLICATION_COMMAND, data, user=user, guild=g, channel=ch, locale=locale)

    async def click(
        self,
        message: FakeMessage | int,
        custom_id: str,
        *,
        user: FakeMember | FakeUser | int,
        values: list[str] | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Press a button (or choose select values) on a message."""
        msg = self.messages[_id_of(message) or 0]
        if msg.deleted:
            raise LookupError(f"message {msg.id} was deleted")
        component = msg.component(custom_id)
        if component is None:
            raise LookupError(f"message {msg.id} has no component {custom_id!r}; it has {msg.custom_ids()}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] != 2:
            data["values"] = list(values or [])
        g = self.guilds.get(msg.guild_id) if msg.guild_id else None
        ch = self.channels[msg.channel_id]
        return await self._send_interaction(
            MESSAGE_COMPONENT, data, user=user, guild=g, channel=ch, locale=locale, message=msg
        )

    async def submit_modal(
        self,
        custom_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        user: FakeMember | FakeUser | int | None = None,
        handle: InteractionHandle | None = None,
        guild: FakeGuild | int | None = None,
        channel: FakeChannel | int | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Submit a modal; pass the handle whose callback showed it to mirror its fields and context."""
        modal = handle.modal if handle is not None else None
        if handle is not None and modal is None:
            raise ValueError(f"{handle!r} did not answer with a modal")
        custom_id = custom_id or (modal or {}).get("custom_id")
        if custom_id is None:
            raise ValueError("custom_id is required without a handle")
        data = {"custom_id": custom_id, "components": modal_submit_components(modal, dict(values or {}))}
        who = user if user is not None else handle.user if handle is not None else None
        if who is None:
            raise ValueError("user is required without a handle")
        if handle is not None and guild is None and channel is None:
            guild, channel = handle.guild_id, handle.channel_id
        g, ch = self._where(guild, channel, who)
        message = handle.message if handle is not None else None
        return await self._send_interaction(
            MODAL_SUBMIT, data, user=who, guild=g, channel=ch, locale=locale, message=message
        )

    # -- reading what the bot did ------------------------------------------------------------------

    def channel_messages(self, channel: FakeChannel | int) -> list[FakeMessage]:
        """Return the channel's visible messages (not ephemeral, not deleted), oldest first."""
        ids = self.channel_message_ids.get(_id_of(channel) or 0, [])
        return [m for m in (self.messages[i] for i in ids) if not m.deleted and not m.ephemeral]

    async def wait_for_message(
        self,
        channel: FakeChannel | int,
        predicate: Callable[[FakeMessage], bool] = lambda m: True,
        timeout: float = 5.0,
    ) -> FakeMessage:
        """Wait for a visible message in a channel that satisfies predicate, and return it."""
        found: list[FakeMessage] = []

        def check() -> bool:
            found[:] = [m for m in self.channel_messages(channel) if predicate(m)]
            return bool(found)

        await self.wait_until(check, timeout, f"a message in channel {_id_of(channel)}")
        return found[0]

    async def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        """Wait for a recorded request (that got an answer) satisfying predicate, and return it."""
        found: list[RecordedRequest] = []

        def check() -> bool:
            found[:] = [r for r in self.requests if r.status is not None and predicate(r)]
            return bool(found)

        await self.wait_until(check, timeout, "a matching request")
        return found[0]

    def requests_to(self, method: str, template: str) -> list[RecordedRequest]:
        """Return the answered requests to one route (spec template)."""
        return [r for r in self.requests if r.method == method.upper() and r.template == template]

    @property
    def unknown_routes(self) -> list[RecordedRequest]:
        """Return requests to routes the fake does not implement."""
        return [r for r in self.requests if r.unknown_route]

    def dm_channel(self, user: FakeUser | FakeMember | int) -> FakeChannel | None:
        """Return the DM channel the bot opened with a user, if any."""
        uid = self._user_of(user).id
        return next((c for c in self.channels.values() if c.type == DM and c.recipients[0].id == uid), None)

    # -- internals ---------------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "a condition") -> None:
        """Wait until predicate (over the fake's state) holds; woken by every change, no polling."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(r.route + f"->{r.status}" for r in self.requests[-8:])
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}; recent requests: {recent}")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    def _announce(
        self,
        event: str,
        build: Callable[[gw.GatewaySession], dict[str, Any]],
        intent: int,
        *,
        guild_id: int | None = None,
    ) -> None:
        """Send an event for a change made by sync world-building code, if the bot is connected (to its shard)."""
        s = self.session if guild_id is None else self.session_for(guild_id)
        if s is None or not s.intents & intent or s.connection is None:
            return
        connection = s.connection
        task = asyncio.get_running_loop().create_task(connection.dispatch(event, build(s)))
        connection_tasks.add(task)
        task.add_done_callback(connection_tasks.discard)

    def _guild(self, guild: FakeGuild | int) -> FakeGuild:
        return guild if isinstance(guild, FakeGuild) else self.guilds[guild]

    def _user_of(self, who: FakeMember | FakeUser | int) -> FakeUser:
        if isinstance(who, FakeMember):
            return who.user
        if isinstance(who, FakeUser):
            return who
        return self.users[int(who)]

    def _where(
        self,
        guild: FakeGuild | int | None,
        channel: FakeChannel | int | None,
        user: FakeMember | FakeUser | int,
    ) -> tuple[FakeGuild | None, FakeChannel]:
        if channel is not None:
            ch = self.channels[_id_of(channel) or 0]
            g = self.guilds[ch.guild_id] if ch.guild_id is not None else None
            return g, ch
        if guild is not None:
            g = self._guild(guild)
            text = next((c for c in g.channels.values() if c.type == GUILD_TEXT), None)
            if text is None:
                raise LookupError(f"guild {g.id} has no text channel")
            return g, text
        if isinstance(user, FakeMember):
            return self._where(user.guild_id, None, user)
        return None, self.rest.open_dm(self._user_of(user))

    def _registered(self, name: str, guild_id: int | None) -> dict[str, Any] | None:
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        return None

    async def _send_interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: FakeMember | FakeUser | int,
        guild: FakeGuild | None,
        channel: FakeChannel,
        locale: str,
        message: FakeMessage | None = None,
    ) -> InteractionHandle:
        where = guild.id if guild else None
        s = self.session_for(where)
        if s is None or not s.resumable:
            await self.wait_until(
                lambda: (live := self.session_for(where)) is not None and live.live,
                10.0,
                "the bot to connect to the gateway",
            )
        # else the bot is connected, or dropped with its session resumable: Discord keeps the event for the RESUME
        account = self._user_of(user)
        interaction_id = self.ids.next()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        bot_member = guild.members[self.bot_user.id] if guild else None
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel": channel.payload(),
            "channel_id": str(channel.id),
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": guild.filesize_limit if guild else FILESIZE_BY_PREMIUM_TIER[0],
        }
        if guild is not None:
            member = guild.members.get(account.id)
            if member is None:
                raise LookupError(f"{account.username} is not a member of guild {guild.id}")
            perms = guild.permissions_in(member, channel)
            if member.permissions_override is not None:
                perms = member.permissions_override
            payload["guild"] = {"id": str(guild.id), "locale": guild.preferred_locale, "features": []}
            payload["guild_id"] = str(guild.id)
            payload["guild_locale"] = guild.preferred_locale
            payload["member"] = {**member.payload(), "permissions": str(perms)}
            payload["channel"]["permissions"] = str(perms)
            assert bot_member is not None
            payload["app_permissions"] = str(guild.permissions_in(bot_member, channel))
            payload["authorizing_integration_owners"] = {"0": str(guild.id)}
            payload["context"] = 0
        else:
            payload["user"] = account.payload()
            payload["app_permissions"] = str(_DM_APP_PERMISSIONS)
            payload["authorizing_integration_owners"] = {"0": "0"}
            payload["context"] = 1
        if message is not None:
            payload["message"] = message.payload(self.users)
        handle = InteractionHandle(
            self,
            id=interaction_id,
            token=token,
            type=kind,
            payload=payload,
            user=account,
            guild_id=guild.id if guild else None,
            channel_id=channel.id,
            message=message,
        )
        self.interactions[interaction_id] = handle
        await self.dispatch("INTERACTION_CREATE", payload)
        return handle

    def _new_attachment(self, filename: str, data: bytes, content_type: str | None) -> FakeAttachment:
        attachment_id = self.ids.next()
        attachment = FakeAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=f"{self.base_url}/attachments/{attachment_id}/{filename}",
        )
        self.attachments[attachment_id] = attachment
        return attachment

    def _ready_payload(self, session: gw.GatewaySession, *, shard: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": True, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds if session.covers(g)],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": APPLICATION_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["loopback"],
            "user_settings": {},
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if shard is not None:
            data["shard"] = shard
        return data

    def _guild_create_payload(self, guild: FakeGuild, intents: int) -> dict[str, Any]:
        # Without the presence intent Discord sends only the bot's own member; the rest is chunked (op 8).
        members = list(guild.members.values())
        if not intents & INTENT_GUILD_PRESENCES:
            members = [m for m in members if m.id == self.bot_user.id]
        data = guild.payload()
        data.update(
            joined_at=guild.members[self.bot_user.id].joined_at.isoformat(),
            large=len(guild.members) >= 250,
            unavailable=False,
            member_count=len(guild.members),
            members=[m.payload() for m in members],
            channels=[c.payload() for c in guild.channels.values() if not c.is_thread],
            threads=[c.payload() for c in guild.channels.values() if c.is_thread and not c.archived],
            voice_states=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            embedded_activities=[],
            lazy=True,
        )
        return data

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        return await gw.handle_gateway(self, request)

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        attachment = self.attachments.get(int(request.match_info["attachment_id"]))
        self.requests.append(
            RecordedRequest("GET", request.path, "CDN /attachments", dict(request.query), dict(request.headers), None)
        )
        if attachment is None or attachment.filename != request.match_info["filename"]:
            self.requests[-1].status = 404
            return web.Response(status=404, text="Not Found")
        self.requests[-1].status = 200
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")

    async def _handle_stray(self, request: web.Request) -> web.StreamResponse:
        rec = RecordedRequest(
            request.method, request.path, None, dict(request.query), dict(request.headers), request.content_type
        )
        rec.unknown_route = True
        rec.status = 404
        rec.response = {"message": "404: Not Found", "code": 0}
        self.requests.append(rec)
        self._notify()
        body = json.dumps(rec.response).encode()
        return web.Response(status=404, body=body, headers={"Content-Type": "application/json"})


_DM_APP_PERMISSIONS = ((1 << 51) - 1) & ~ADMINISTRATOR
connection_tasks: set[asyncio.Task[None]] = set()


def _id_of(thing: Any) -> int | None:
    if thing is None:
        return None
    if isinstance(thing, int):
        return thing
    return int(thing.id)
