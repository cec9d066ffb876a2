"""The fake Discord gateway: HELLO, heartbeats, IDENTIFY/RESUME, and dispatches with sequence numbers."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import WSMsgType, web

from .models import PRIVILEGED_INTENTS

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_UNKNOWN_ERROR = 4000
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SEQ = 4007
CLOSE_SESSION_TIMED_OUT = 4009
CLOSE_INVALID_SHARD = 4010
CLOSE_INVALID_API_VERSION = 4012
CLOSE_DISALLOWED_INTENTS = 4014


#: Close codes that end the session: a RESUME after them is answered with INVALID_SESSION (d=false). A client's own
#: 1000/1001 close ends it too (the bot goes offline), as Discord does.
SESSION_ENDING_CLOSES = frozenset({1000, 1001, CLOSE_INVALID_SEQ, CLOSE_SESSION_TIMED_OUT})


class _Compressor(Protocol):
    def __call__(self, data: bytes) -> bytes: ...


def _zlib_stream() -> _Compressor:
    """One zlib stream per connection, each payload flushed so it ends in 00 00 ff ff."""
    stream = zlib.compressobj()

    def compress(data: bytes) -> bytes:
        return stream.compress(data) + stream.flush(zlib.Z_SYNC_FLUSH)

    return compress


def _zstd_stream() -> _Compressor:
    """One zstd stream per connection, each payload flushed to a block boundary."""
    import zstandard  # only needed when the client has a zstd decoder, then it asks for zstd-stream

    stream = zstandard.ZstdCompressor().compressobj()

    def compress(data: bytes) -> bytes:
        return stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    return compress


@dataclass
class GatewaySession:
    """What survives a dropped connection: the session id, sequence and the events sent, for RESUME."""

    session_id: str
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    sent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    connection: GatewayConnection | None = None
    resumes: int = 0
    invalid: bool = False  # invalidated (op 9, a session-ending close): it can no longer be resumed
    replayed: list[int] = field(default_factory=list)  # the sequence numbers sent again on RESUME, in order
    closes: list[int | None] = field(default_factory=list)  # the close code of each connection that ended
    shard: tuple[int, int] = (0, 1)  # (shard id, shard count) from IDENTIFY; (0, 1) when none was given

    @property
    def resumable(self) -> bool:
        """Tell whether a RESUME of this session would be accepted."""
        return not self.invalid

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session receives the guild's events: (guild_id >> 22) % count == id; DMs go to shard 0."""
        shard_id, count = self.shard
        return shard_for(guild_id, count) == shard_id

    @property
    def live(self) -> bool:
        return self.connection is not None and not self.connection.ws.closed


def shard_for(guild_id: int | None, count: int) -> int:
    """Discord's rule: a guild's events go to shard (guild_id >> 22) % shard_count; DMs to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % count


class GatewayConnection:
    """One websocket connection from the bot."""

    def __init__(
        self, fake: FakeDiscord, ws: web.WebSocketResponse, compress: _Compressor | None, request: web.Request
    ) -> None:
        self.fake = fake
        self.ws = ws
        self.request = request
        self._compress = compress
        self._lock = asyncio.Lock()  # compression state and frame order must match
        self.session: GatewaySession | None = None
        self.heartbeats = 0
        self.server_close_code: int | None = None  # the code the fake closed with (the client's reply echoes 1000)

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one gateway payload, compressed if the client asked for it."""
        raw = json.dumps(payload, separators=(",", ":")).encode()
        async with self._lock:
            if self.ws.closed:
                return
            if self._compress is not None:
                await self.ws.send_bytes(self._compress(raw))
            else:
                await self.ws.send_str(raw.decode())

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH with the session's next sequence number, and keep it for RESUME."""
        session = self.session
        if session is None:
            raise RuntimeError("dispatch before IDENTIFY")
        session.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.sent.append((session.seq, payload))
        await self.send(payload)

    async def close(self, code: int, message: str = "") -> None:
        """Close the websocket with a gateway close code (a session-ending code invalidates the session)."""
        if code in SESSION_ENDING_CLOSES and self.session is not None:
            self.session.invalid = True
        if self.server_close_code is None:
            self.server_close_code = code
        await self.ws.close(code=code, message=message.encode())

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, as a network failure does (the client sees 1006)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def run(self) -> None:
        """Serve the connection until it closes."""
        await self.send(
            {"op": OP_HELLO, "d": {"heartbeat_interval": self.fake.heartbeat_interval_ms}, "s": None, "t": None}
        )
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                raw: str | bytes = msg.data
            elif msg.type is WSMsgType.BINARY:
                raw = msg.data
            else:
                break
            try:
                payload = json.loads(raw)
            except ValueError:
                await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
                break
            self.fake.gateway_received.append(payload)
            await self._handle(payload)
        session = self.session
        if session is not None and session.connection is self:
            session.connection = None
            code = self.server_close_code if self.server_close_code is not None else self.ws.close_code
            session.closes.append(code)
            if code in SESSION_ENDING_CLOSES:
                session.invalid = True
        self.fake._notify()

    async def _handle(self, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await self.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(data or {})
        elif op == OP_RESUME:
            await self._resume(data or {})
        elif self.session is None:
            await self.close(CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
        elif op == OP_REQUEST_GUILD_MEMBERS:
            await self._request_members(data or {})
        elif op == OP_PRESENCE_UPDATE:
            pass  # recorded in fake.gateway_received
        else:
            log.debug("fake gateway ignores op %s", op)

    async def _identify(self, data: dict[str, Any]) -> None:
        fake = self.fake
        if self.session is not None:
            await self.close(CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if data.get("token") != fake.token:
            await self.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        raw_shard = data.get("shard")
        shard = (0, 1) if raw_shard is None else (int(raw_shard[0]), int(raw_shard[1]))
        if not 0 <= shard[0] < shard[1]:
            await self.close(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        privileged = intents & ~fake.allowed_privileged_intents & PRIVILEGED_INTENTS
        if privileged:
            await self.close(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        session = GatewaySession(session_id=secrets.token_hex(16), intents=intents, identify=data, shard=shard)
        session.connection = self
        self.session = session
        fake.sessions.append(session)
        fake.identify_count += 1
        await self.dispatch("READY", fake._ready_payload(session, shard=raw_shard))
        for guild in fake.guilds.values():
            if session.covers(guild.id):  # each shard hears only of its own guilds
                await self.dispatch("GUILD_CREATE", fake._guild_create_payload(guild, intents))
        fake._notify()

    async def _resume(self, data: dict[str, Any]) -> None:
        fake = self.fake
        if data.get("token") != fake.token:
            await self.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        session = next((s for s in fake.sessions if s.session_id == data.get("session_id")), None)
        if session is None or session.invalid or not fake.resume_enabled:
            if session is not None:
                session.invalid = True
            await self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        if session.connection is not None and session.connection is not self:
            await session.connection.close(CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere.")
        session.connection = self
        session.resumes += 1
        self.session = session
        last = int(data.get("seq") or 0)
        for seq, payload in list(session.sent):  # everything the client missed, in order, then RESUMED
            if seq > last:
                session.replayed.append(seq)
                await self.send(payload)
        await self.dispatch("RESUMED", {})
        fake._notify()

    async def _request_members(self, data: dict[str, Any]) -> None:
        guild = self.fake.guilds.get(int(data["guild_id"]))
        if guild is None:
            return
        members = list(guild.members.values())
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif data.get("query"):
            query = str(data["query"]).lower()
            members = [m for m in members if m.user.username.lower().startswith(query)]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)


async def handle_gateway(fake: FakeDiscord, request: web.Request) -> web.StreamResponse:
    """Accept a gateway websocket and serve it."""
    version = request.query.get("v", "10")
    encoding = request.query.get("encoding", "json")
    compression = request.query.get("compress")
    if not fake.gateway_open.is_set():  # held by hold_gateway(): the bot waits to reconnect
        fake.gateway_waiting += 1
        fake._notify()
        try:
            await fake.gateway_open.wait()
        finally:
            fake.gateway_waiting -= 1
    ws = web.WebSocketResponse(autoping=True, max_msg_size=4096 * 1024)
    await ws.prepare(request)
    fake.gateway_urls.append(str(request.rel_url))
    if version != "10":
        await ws.close(code=CLOSE_INVALID_API_VERSION, message=b"Invalid API version.")
        return ws
    if encoding != "json":  # etf is not supported by the fake; discord.py uses json
        await ws.close(code=CLOSE_DECODE_ERROR, message=b"Unsupported encoding.")
        return ws
    compressor: _Compressor | None
    if compression == "zlib-stream":
        compressor = _zlib_stream()
    elif compression == "zstd-stream":
        compressor = _zstd_stream()
    elif compression is None:
        compressor = None
    else:
        await ws.close(code=CLOSE_DECODE_ERROR, message=b"Unsupported compression.")
        return ws
    conn = GatewayConnection(fake, ws, compressor, request)
    fake.connections.append(conn)
    try:
        await conn.run()
    finally:
        fake.connections.remove(conn)
        fake._notify()
    return ws
