"""The fake Discord REST API: routing, recording, OpenAPI checks, faults, and the handlers."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from .faults import bucket_hash
from .interactions import (
    ALLOWED_CALLBACKS,
    APPLICATION_COMMAND,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_UPDATE_MESSAGE,
    MODAL,
    UPDATE_MESSAGE,
    InteractionHandle,
)
from .models import (
    ATTACH_FILES,
    CREATE_PRIVATE_THREADS,
    CREATE_PUBLIC_THREADS,
    DM,
    EPHEMERAL,
    GUILD_NEWS,
    GUILD_TEXT,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    LOADING,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    FakeChannel,
    FakeMessage,
    FakeUser,
    guess_content_type,
    iter_components,
    now,
    resolve_mentions,
)

if TYPE_CHECKING:
    from .server import FakeDiscord, Part, RecordedRequest

log = logging.getLogger(__name__)

CONTENT_LIMIT = 2000
NO_AUTH_PREFIXES = ("/webhooks/", "/interactions/")
_FILE_FIELD = re.compile(r"^files\[(\d+)\]$")


class DiscordError(Exception):
    """An error answer in Discord's JSON shape."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def form_error(field: str, code: str, message: str) -> DiscordError:
    """Return a 400 Invalid Form Body error for one field (dotted path)."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        errors = {part: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def unknown_channel() -> DiscordError:
    """Return 404 Unknown Channel."""
    return DiscordError(404, 10003, "Unknown Channel")


def unknown_message() -> DiscordError:
    """Return 404 Unknown Message."""
    return DiscordError(404, 10008, "Unknown Message")


def missing_permissions() -> DiscordError:
    """Return 403 Missing Permissions."""
    return DiscordError(403, 50013, "Missing Permissions")


@dataclass
class Call:
    """One REST call as a handler sees it."""

    rec: RecordedRequest
    params: dict[str, str]
    payload: Any
    files: dict[int, Part]

    @property
    def query(self) -> dict[str, str]:
        """Return the query string."""
        return self.rec.query

    def param(self, name: str) -> int:
        """Return a snowflake path parameter."""
        try:
            return int(self.params[name])
        except ValueError:
            raise DiscordError(404, 0, "404: Not Found") from None


Handler = Callable[[Call], Awaitable[tuple[int, Any]]]


class RestAPI:
    """Routes /api/v10 requests to handlers, recording and validating each."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.nonces: dict[tuple[int, int, str], tuple[float, int]] = {}
        r = self.routes = dict[tuple[str, str], Handler]()
        r["GET", "/users/@me"] = self.get_me
        r["GET", "/users/{user_id}"] = self.get_user
        r["GET", "/oauth2/applications/@me"] = self.get_application
        r["GET", "/gateway"] = self.get_gateway
        r["GET", "/gateway/bot"] = self.get_gateway_bot
        for scope in (
            "/applications/{application_id}/commands",
            "/applications/{application_id}/guilds/{guild_id}/commands",
        ):
            r["GET", scope] = self.get_commands
            r["PUT", scope] = self.put_commands
        r["POST", "/interactions/{interaction_id}/{interaction_token}/callback"] = self.interaction_callback
        r["POST", "/webhooks/{webhook_id}/{webhook_token}"] = self.execute_webhook
        for tail in ("@original", "{message_id}"):
            path = "/webhooks/{webhook_id}/{webhook_token}/messages/" + tail
            r["GET", path] = self.get_webhook_message
            r["PATCH", path] = self.edit_webhook_message
            r["DELETE", path] = self.delete_webhook_message
        r["GET", "/channels/{channel_id}"] = self.get_channel
        r["GET", "/channels/{channel_id}/messages"] = self.list_messages
        r["POST", "/channels/{channel_id}/messages"] = self.create_message
        r["GET", "/channels/{channel_id}/messages/{message_id}"] = self.get_message
        r["PATCH", "/channels/{channel_id}/messages/{message_id}"] = self.edit_message
        r["DELETE", "/channels/{channel_id}/messages/{message_id}"] = self.delete_message
        r["POST", "/channels/{channel_id}/threads"] = self.create_thread
        r["POST", "/channels/{channel_id}/messages/{message_id}/threads"] = self.create_thread_from_message
        r["POST", "/users/@me/channels"] = self.create_dm
        r["GET", "/guilds/{guild_id}"] = self.get_guild
        r["GET", "/guilds/{guild_id}/channels"] = self.get_guild_channels
        r["GET", "/guilds/{guild_id}/roles"] = self.get_guild_roles
        r["GET", "/guilds/{guild_id}/members/{user_id}"] = self.get_member

    # -- the pipeline --------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, validate, maybe fail, then answer one REST request."""
        from .server import RecordedRequest

        fake = self.fake
        path = "/" + request.match_info["tail"]
        rec = RecordedRequest(
            method=request.method,
            path=path,
            template=None,
            query=dict(request.query),
            headers=dict(request.headers),
            content_type=request.content_type if request.body_exists else None,
        )
        fake.requests.append(rec)
        try:
            status, body, headers = await self._answer(request, rec)
        except Exception as exc:  # a bug in the fake: answer fast (a 500 makes discord.py retry) and fail the test
            log.exception("fake Discord crashed on %s", rec.route)
            fake.violations.append(f"fake Discord crashed on {rec.route}: {exc!r}")
            status, body, headers = 400, {"message": f"Fake Discord crashed: {exc!r}", "code": 0}, {}
        rec.status, rec.response = status, body
        fake._notify()
        if body is None:
            return web.Response(status=status, headers=headers)
        # Exactly "application/json", no charset, as Discord sends it: discord.py compares the header verbatim.
        headers = {**headers, "Content-Type": "application/json"}
        return web.Response(status=status, body=json.dumps(body).encode(), headers=headers)

    async def _answer(self, request: web.Request, rec: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        fake = self.fake
        assert fake.spec is not None
        found = fake.spec.match(rec.method, rec.path)
        params: dict[str, str] = {}
        if found is not None:
            rec.template = found[0].template
            params = found[1]
        payload, parts, has_body = await self._read_body(request, rec)
        rec.json, rec.parts = payload, parts
        files: dict[int, Part] = {}
        for part in parts:
            m = _FILE_FIELD.match(part.name)
            if m is not None:
                files[int(m.group(1))] = part
        headers = self._ratelimit_headers(rec)
        if found is None:
            rec.unknown_route = True
            return 404, {"message": "404: Not Found", "code": 0}, headers
        rec.violations = fake.spec.check_request(
            rec.method, rec.path, content_type=rec.content_type, body=payload, has_body=has_body, query=rec.query
        )
        fake.violations.extend(rec.violations)
        if not rec.path.startswith(NO_AUTH_PREFIXES) and rec.headers.get("Authorization") != f"Bot {fake.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, headers
        fault = fake.faults.take(rec)
        rec.fault = fault
        if fault is not None and not fault.apply:
            fake.faults.record(fault, rec, applied=False)
            return fault.answer(rec, headers)
        handler = self.routes.get((rec.method, rec.template or ""))
        if handler is None:
            rec.unknown_route = True
            return 404, {"message": "404: Not Found (route not implemented by the fake)", "code": 0}, headers
        try:
            status, body = await handler(Call(rec, params, payload, files))
        except DiscordError as err:
            status, body = err.status, err.body()
        if fault is not None:  # "apply then fail": the request took effect, but the answer is the fault
            fake.faults.record(fault, rec, applied=status < 300)
            return fault.answer(rec, headers)
        return status, body, headers

    async def _read_body(self, request: web.Request, rec: RecordedRequest) -> tuple[Any, list[Part], bool]:
        from .server import Part

        if not request.body_exists:
            return None, [], False
        if request.content_type == "multipart/form-data":
            parts: list[Part] = []
            reader = await request.multipart()
            async for item in reader:
                if not isinstance(item, BodyPartReader):
                    continue
                data = await item.read()
                parts.append(
                    Part(
                        name=item.name or "",
                        filename=item.filename,
                        content_type=item.headers.get("Content-Type"),
                        data=bytes(data),
                    )
                )
            payload_part = next((p for p in parts if p.name == "payload_json"), None)
            if payload_part is None:
                return {}, parts, True
            try:
                return json.loads(payload_part.data), parts, True
            except ValueError:
                rec.violations.append("payload_json is not JSON")
                return None, parts, True
        raw = await request.read()
        if not raw:
            return None, [], False
        try:
            return json.loads(raw), [], True
        except ValueError:
            self.fake.violations.append(f"{rec.method} {rec.path}: body is not JSON: {raw[:80]!r}")
            return None, [], True

    def _ratelimit_headers(self, rec: RecordedRequest) -> dict[str, str]:
        bucket = bucket_hash(rec)
        return {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": bucket,
        }

    # -- users, application, gateway ------------------------------------------------------------------

    async def get_me(self, call: Call) -> tuple[int, Any]:
        bot = self.fake.bot_user
        return 200, {**bot.payload(), "verified": True, "mfa_enabled": True, "email": None, "locale": "en-US"}

    async def get_user(self, call: Call) -> tuple[int, Any]:
        user = self.fake.users.get(call.param("user_id"))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return 200, user.payload()

    async def get_application(self, call: Call) -> tuple[int, Any]:
        fake = self.fake
        return 200, {
            "id": str(fake.application_id),
            "name": fake.app_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 1 << 23,
            "hook": True,
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "owner": fake.owner.payload(),
            "team": None,
            "bot": fake.bot_user.payload(),
            "approximate_guild_count": len(fake.guilds),
            "approximate_user_install_count": 0,
            "integration_types_config": {"0": {}},
            "tags": [],
            "rpc_origins": [],
        }

    async def get_gateway(self, call: Call) -> tuple[int, Any]:
        return 200, {"url": self.fake.gateway_url}

    async def get_gateway_bot(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "url": self.fake.gateway_url,
            "shards": self.fake.shard_count,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1},
        }

    # -- application commands ----------------------------------------------------------------------

    def _command_scope(self, call: Call) -> int | None:
        if call.param("application_id") != self.fake.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" not in call.params:
            return None
        guild_id = call.param("guild_id")
        if guild_id not in self.fake.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id

    async def get_commands(self, call: Call) -> tuple[int, Any]:
        return 200, self.fake.commands.get(self._command_scope(call), [])

    async def put_commands(self, call: Call) -> tuple[int, Any]:
        fake = self.fake
        scope = self._command_scope(call)
        if not isinstance(call.payload, list):
            raise form_error("_root", "BASE_TYPE_ARRAY", "Must be an array.")
        stored = []
        seen: set[tuple[str, int]] = set()
        for index, raw in enumerate(call.payload):
            kind = int(raw.get("type") or 1)
            key = (raw["name"], kind)
            if key in seen:
                raise form_error(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate name.")
            seen.add(key)
            _check_option_order(raw.get("options") or [], f"{index}.options")
            command_id = fake._command_ids.setdefault((scope, raw["name"], kind), fake.ids.next())
            perms = raw.get("default_member_permissions")
            command = {
                "id": str(command_id),
                "application_id": str(fake.application_id),
                "version": str(fake.ids.next()),
                "type": kind,
                "name": raw["name"],
                "name_localizations": raw.get("name_localizations"),
                "description": raw.get("description") or "",
                "description_localizations": raw.get("description_localizations"),
                "default_member_permissions": None if perms is None else str(perms),
                "nsfw": bool(raw.get("nsfw")),
                "contexts": raw.get("contexts"),
                "integration_types": raw.get("integration_types") or [0],
            }
            if raw.get("options"):
                command["options"] = raw["options"]
            if scope is not None:
                command["guild_id"] = str(scope)
            else:
                command["dm_permission"] = raw.get("dm_permission", True)
            stored.append(command)
        fake.commands[scope] = stored
        return 200, stored

    # -- interactions --------------------------------------------------------------------------------

    def _interaction_by_token(self, webhook_id: int, token: str) -> InteractionHandle:
        fake = self.fake
        handle = next((h for h in fake.interactions.values() if h.token == token), None)
        if webhook_id != fake.application_id or handle is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if handle.expired:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if handle.callback_type is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return handle

    async def interaction_callback(self, call: Call) -> tuple[int, Any]:
        fake = self.fake
        handle = fake.interactions.get(call.param("interaction_id"))
        if handle is None or handle.token != call.params["interaction_token"] or handle.expired:
            raise DiscordError(404, 10062, "Unknown interaction")
        if handle.callback_type is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = call.payload if isinstance(call.payload, dict) else {}
        kind = body.get("type")
        data = body.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(handle.type, set()):
            raise form_error("type", "INTERACTION_CALLBACK_TYPE_INVALID", f"Callback type {kind} is not valid here.")
        if kind == UPDATE_MESSAGE and handle.message is None:
            raise form_error("type", "INTERACTION_CALLBACK_TYPE_INVALID", "There is no message to update.")
        resource_message: FakeMessage | None = None
        if kind == CHANNEL_MESSAGE_WITH_SOURCE:
            handle.original = self._create_interaction_message(
                handle, data, call.files, data.get("flags") or 0, original=True
            )
            resource_message = handle.original
        elif kind == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            handle.original = self._create_interaction_message(handle, {}, {}, flags, original=True, placeholder=True)
            resource_message = handle.original
        elif kind == UPDATE_MESSAGE:
            assert handle.message is not None
            await self._edit(handle.message, data, call.files)
            resource_message = handle.message
        elif kind == MODAL:
            handle.modal = data
        elif kind == AUTOCOMPLETE_RESULT:
            handle.autocomplete_choices = list(data.get("choices") or [])
        handle.callback_type = kind
        handle.callback_data = data
        if resource_message is not None and kind in (CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE):
            await self._announce_message("MESSAGE_CREATE", resource_message)
        if call.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        if resource_message is not None:
            interaction.update(
                response_message_id=str(resource_message.id),
                response_message_loading=resource_message.loading,
                response_message_ephemeral=resource_message.ephemeral,
            )
        resource: dict[str, Any] = {"type": kind}
        if resource_message is not None:
            resource["message"] = resource_message.payload(fake.users)
        return 200, {"interaction": interaction, "resource": resource}

    def _create_interaction_message(
        self,
        handle: InteractionHandle,
        data: dict[str, Any],
        files: dict[int, Part],
        flags: int,
        *,
        original: bool,
        placeholder: bool = False,
    ) -> FakeMessage:
        fake = self.fake
        message = FakeMessage(
            id=fake.ids.next(),
            channel_id=handle.channel_id,
            guild_id=handle.guild_id,
            author=fake.bot_user,
            type=20 if original and handle.type == APPLICATION_COMMAND else 0,
            webhook_id=fake.application_id,
            application_id=fake.application_id,
            interaction_metadata={
                "id": str(handle.id),
                "type": handle.type,
                "user": handle.user.payload(),
                "authorizing_integration_owners": handle.payload.get("authorizing_integration_owners", {}),
            },
        )
        if not placeholder:
            _check_message_body(data, files, creating=True)
            self._apply(message, data, files, creating=True)
        message.flags = flags if placeholder else flags & ~LOADING
        self._store(message)
        return message

    async def execute_webhook(self, call: Call) -> tuple[int, Any]:
        handle = self._interaction_by_token(call.param("webhook_id"), call.params["webhook_token"])
        body = call.payload if isinstance(call.payload, dict) else {}
        original = handle.original
        if original is not None and original.loading and handle.callback_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            # The first followup after a deferral fills in the "thinking" message; its ephemerality was set
            # by the deferral and the followup's own flags cannot change it.
            _check_message_body(body, call.files, creating=True)
            self._apply(original, body, call.files, creating=True)
            original.flags = (original.flags & ~LOADING & EPHEMERAL) | ((body.get("flags") or 0) & ~EPHEMERAL)
            message = original
            await self._announce_message("MESSAGE_UPDATE", message)
        else:
            message = self._create_interaction_message(handle, body, call.files, body.get("flags") or 0, original=False)
            await self._announce_message("MESSAGE_CREATE", message)
        handle.followups.append(message)
        if call.query.get("wait", "").lower() not in ("1", "true"):
            return 204, None
        return 200, message.payload(self.fake.users)

    def _webhook_message(self, call: Call) -> tuple[InteractionHandle, FakeMessage]:
        handle = self._interaction_by_token(call.param("webhook_id"), call.params["webhook_token"])
        if "message_id" in call.params:
            wanted = call.param("message_id")
            message = next((m for m in handle.messages if m.id == wanted), None)
        else:
            message = handle.original
            if handle.callback_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
                message = handle.message
        if message is None or message.deleted:
            raise unknown_message()
        return handle, message

    async def get_webhook_message(self, call: Call) -> tuple[int, Any]:
        _, message = self._webhook_message(call)
        return 200, message.payload(self.fake.users)

    async def edit_webhook_message(self, call: Call) -> tuple[int, Any]:
        _, message = self._webhook_message(call)
        body = call.payload if isinstance(call.payload, dict) else {}
        was_loading = message.loading
        await self._edit(message, body, call.files, keep_ephemeral=True)
        if was_loading:
            message.flags &= ~LOADING
            message.edited_timestamp = None
        return 200, message.payload(self.fake.users)

    async def delete_webhook_message(self, call: Call) -> tuple[int, Any]:
        _, message = self._webhook_message(call)
        await self._delete(message)
        return 204, None

    # -- channels and messages ---------------------------------------------------------------------

    def _channel(self, call: Call) -> FakeChannel:
        channel = self.fake.channels.get(call.param("channel_id"))
        if channel is None:
            raise unknown_channel()
        return channel

    def _require(self, channel: FakeChannel, needed: int) -> None:
        if channel.guild_id is None:
            return
        guild = self.fake.guilds[channel.guild_id]
        perms = guild.permissions_in(guild.members[self.fake.bot_user.id], channel)
        if not perms & VIEW_CHANNEL:
            raise DiscordError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise missing_permissions()

    async def get_channel(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, 0)
        return 200, channel.payload()

    async def list_messages(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, READ_MESSAGE_HISTORY)
        limit = int(call.query.get("limit", 50))
        if not 1 <= limit <= 100:
            raise form_error("limit", "NUMBER_TYPE_MAX", "Int should be between 1 and 100.")
        visible = list(reversed(self.fake.channel_messages(channel)))  # newest first, like Discord
        if "before" in call.query:
            before = int(call.query["before"])
            visible = [m for m in visible if m.id < before]
        if "after" in call.query:
            after = int(call.query["after"])
            visible = [m for m in visible if m.id > after][-limit:]
        return 200, [m.payload(self.fake.users) for m in visible[:limit]]

    async def create_message(self, call: Call) -> tuple[int, Any]:
        fake = self.fake
        channel = self._channel(call)
        body = call.payload if isinstance(call.payload, dict) else {}
        if channel.type == DM:
            if channel.recipients[0].dms_closed:
                raise DiscordError(403, 50007, "Cannot send messages to this user")
        else:
            needed = SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES
            self._require(channel, needed | (ATTACH_FILES if call.files else 0))
            if channel.forbid_post:
                raise missing_permissions()
        _check_message_body(body, call.files, creating=True)
        self._check_upload_size(channel, call.files)
        nonce = body.get("nonce")
        key = (channel.id, fake.bot_user.id, str(nonce))
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self.nonces.get(key)
            if earlier is not None and time.monotonic() - earlier[0] < fake.nonce_window_s:
                previous = fake.messages[earlier[1]]
                return 200, previous.payload(fake.users)
        message = FakeMessage(
            id=fake.ids.next(), channel_id=channel.id, guild_id=channel.guild_id, author=fake.bot_user
        )
        self._apply(message, body, call.files, creating=True)
        message.flags = (body.get("flags") or 0) & ~(EPHEMERAL | LOADING)
        message.nonce = nonce
        self._store(message)
        if nonce is not None:
            self.nonces[key] = (time.monotonic(), message.id)
        await self._announce_message("MESSAGE_CREATE", message)
        return 200, message.payload(fake.users)

    def _channel_message(self, call: Call) -> tuple[FakeChannel, FakeMessage]:
        channel = self._channel(call)
        message = self.fake.messages.get(call.param("message_id"))
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise unknown_message()
        return channel, message

    async def get_message(self, call: Call) -> tuple[int, Any]:
        channel, message = self._channel_message(call)
        self._require(channel, READ_MESSAGE_HISTORY)
        return 200, message.payload(self.fake.users)

    async def edit_message(self, call: Call) -> tuple[int, Any]:
        channel, message = self._channel_message(call)
        self._require(channel, 0)
        if message.author.id != self.fake.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._check_upload_size(channel, call.files)
        body = call.payload if isinstance(call.payload, dict) else {}
        await self._edit(message, body, call.files)
        return 200, message.payload(self.fake.users)

    async def delete_message(self, call: Call) -> tuple[int, Any]:
        channel, message = self._channel_message(call)
        self._require(channel, 0)
        await self._delete(message)
        return 204, None

    async def create_thread(self, call: Call) -> tuple[int, Any]:
        parent = self._channel(call)
        body = call.payload if isinstance(call.payload, dict) else {}
        if parent.type not in (GUILD_TEXT, GUILD_NEWS):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        kind = int(body.get("type") or PRIVATE_THREAD)
        self._require(parent, CREATE_PRIVATE_THREADS if kind == PRIVATE_THREAD else CREATE_PUBLIC_THREADS)
        thread = self._new_thread(parent, self.fake.ids.next(), body, kind)
        return 201, await self._thread_created(thread)

    async def create_thread_from_message(self, call: Call) -> tuple[int, Any]:
        parent, message = self._channel_message(call)
        body = call.payload if isinstance(call.payload, dict) else {}
        if parent.type not in (GUILD_TEXT, GUILD_NEWS):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self._require(parent, CREATE_PUBLIC_THREADS)
        if message.thread_id is not None:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self._new_thread(parent, message.id, body, 10 if parent.type == GUILD_NEWS else PUBLIC_THREAD)
        message.thread_id = thread.id
        return 201, await self._thread_created(thread)

    def _new_thread(self, parent: FakeChannel, thread_id: int, body: dict[str, Any], kind: int) -> FakeChannel:
        fake = self.fake
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        assert parent.guild_id is not None
        thread = FakeChannel(
            id=thread_id,
            type=kind,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=fake.bot_user.id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        fake.guilds[parent.guild_id].channels[thread.id] = thread
        fake.channels[thread.id] = thread
        return thread

    async def _thread_created(self, thread: FakeChannel) -> dict[str, Any]:
        data = thread.payload()
        member = {
            "id": str(thread.id),
            "user_id": str(self.fake.bot_user.id),
            "join_timestamp": data["thread_metadata"]["create_timestamp"],
            "flags": 1,
        }
        await self.fake.dispatch(
            "THREAD_CREATE", {**data, "newly_created": True, "member": member}, intent=INTENT_GUILDS
        )
        return {**data, "member": member}

    def open_dm(self, user: FakeUser) -> FakeChannel:
        """Return the bot's DM channel with a user, creating it."""
        fake = self.fake
        existing = fake.dm_channel(user)
        if existing is not None:
            return existing
        channel = FakeChannel(id=fake.ids.next(), type=DM, name=None, guild_id=None, recipients=[user])
        fake.channels[channel.id] = channel
        return channel

    async def create_dm(self, call: Call) -> tuple[int, Any]:
        body = call.payload if isinstance(call.payload, dict) else {}
        user = self.fake.users.get(int(body.get("recipient_id") or 0))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return 200, self.open_dm(user).payload()

    # -- guilds --------------------------------------------------------------------------------------

    def _guild(self, call: Call) -> Any:
        guild = self.fake.guilds.get(call.param("guild_id"))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def get_guild(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        return 200, guild.payload(with_counts=call.query.get("with_counts", "").lower() in ("1", "true"))

    async def get_guild_channels(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        return 200, [c.payload() for c in guild.channels.values() if not c.is_thread]

    async def get_guild_roles(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        return 200, [r.payload() for r in guild.roles.values()]

    async def get_member(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = guild.members.get(call.param("user_id"))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return 200, member.payload()

    # -- message helpers -----------------------------------------------------------------------------

    def _check_upload_size(self, channel: FakeChannel, files: dict[int, Part]) -> None:
        limit = self.fake.guilds[channel.guild_id].filesize_limit if channel.guild_id else 10 * 1024 * 1024
        if any(len(p.data) > limit for p in files.values()):
            raise DiscordError(413, 40005, "Request entity too large")

    def _apply(self, message: FakeMessage, body: dict[str, Any], files: dict[int, Part], *, creating: bool) -> None:
        """Apply a create or edit body to a message (content, embeds, components, attachments, mentions)."""
        fake = self.fake
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = list(body["components"] or [])
        if "tts" in body and creating:
            message.tts = bool(body["tts"])
        if "message_reference" in body and creating:
            message.message_reference = body["message_reference"]
        if "allowed_mentions" in body or creating:
            message.allowed_mentions = body.get("allowed_mentions")
        attachments_meta = body.get("attachments")
        if attachments_meta is not None or files:
            kept = []
            used: set[int] = set()
            for entry in attachments_meta or []:
                entry_id = int(entry["id"])
                part = files.get(entry_id)
                if part is not None and entry_id not in used:
                    used.add(entry_id)
                    kept.append(self._upload(part, entry))
                    continue
                existing = next((a for a in message.attachments if a.id == entry_id), None)
                if existing is None:
                    raise form_error("attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment id {entry_id}.")
                kept.append(existing)
            if attachments_meta is None and not creating:
                kept = list(message.attachments)
            for index, part in sorted(files.items()):
                if index not in used:
                    kept.append(self._upload(part, {}))
            if len(kept) > 10:
                raise form_error("attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
            message.attachments = kept
        reply_to = None
        ref = message.message_reference
        if ref and ref.get("message_id"):
            replied = fake.messages.get(int(ref["message_id"]))
            reply_to = replied.author.id if replied else None
        users, roles, everyone = resolve_mentions(message.content, message.allowed_mentions, reply_to=reply_to)
        message.pinged_user_ids, message.pinged_role_ids, message.mention_everyone = users, roles, everyone

    def _upload(self, part: Part, meta: dict[str, Any]) -> Any:
        filename = meta.get("filename") or part.filename or "file"
        attachment = self.fake._new_attachment(filename, part.data, guess_content_type(filename))
        attachment.description = meta.get("description")
        return attachment

    def _store(self, message: FakeMessage) -> None:
        fake = self.fake
        fake.messages[message.id] = message
        fake.channel_message_ids.setdefault(message.channel_id, []).append(message.id)
        channel = fake.channels.get(message.channel_id)
        if channel is not None and not message.ephemeral:
            channel.last_message_id = message.id
            channel.message_count += 1

    async def _edit(
        self, message: FakeMessage, body: dict[str, Any], files: dict[int, Part], *, keep_ephemeral: bool = True
    ) -> None:
        _check_message_body(body, files, creating=False)
        self._apply(message, body, files, creating=False)
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & (EPHEMERAL | LOADING) if keep_ephemeral else 0
            message.flags = (int(body["flags"]) & ~(EPHEMERAL | LOADING)) | keep
        message.edited_timestamp = now()
        await self._announce_message("MESSAGE_UPDATE", message)

    async def _delete(self, message: FakeMessage) -> None:
        message.deleted = True
        if message.ephemeral:
            return
        data: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self.fake.dispatch("MESSAGE_DELETE", data, intent=_message_intent(message))

    async def _announce_message(self, event: str, message: FakeMessage) -> None:
        if message.ephemeral:
            return
        data = message.payload(self.fake.users)
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
            member = self.fake.guilds[message.guild_id].members.get(message.author.id)
            if member is not None and message.webhook_id is None:
                data["member"] = member.payload(with_user=False)
        await self.fake.dispatch(event, data, intent=_message_intent(message))


def _message_intent(message: FakeMessage) -> int:
    return INTENT_GUILD_MESSAGES if message.guild_id is not None else INTENT_DIRECT_MESSAGES


def _check_message_body(body: dict[str, Any], files: dict[int, Any], *, creating: bool) -> None:
    """Reject what Discord rejects beyond the schema: empty messages, over-long content, bad mentions."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_LIMIT:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length.")
    allowed = body.get("allowed_mentions")
    if isinstance(allowed, dict):
        parse = allowed.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and allowed.get(kind):
                raise form_error(
                    f"allowed_mentions.{kind}",
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids] are mutually exclusive.',
                )
    custom_ids = [c["custom_id"] for c in iter_components(body.get("components") or []) if "custom_id" in c]
    if len(custom_ids) != len(set(custom_ids)):
        raise form_error("components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
    embeds = body.get("embeds") or []
    if sum(len(json.dumps(e)) for e in embeds) > 0 and _embed_chars(embeds) > 6000:
        raise form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if creating:
        has_content = isinstance(content, str) and content.strip() != ""
        if not (
            has_content or embeds or files or body.get("components") or body.get("sticker_ids") or body.get("poll")
        ):
            raise DiscordError(400, 50006, "Cannot send an empty message")


def _embed_chars(embeds: list[dict[str, Any]]) -> int:
    total = 0
    for e in embeds:
        total += len(e.get("title") or "") + len(e.get("description") or "")
        total += len((e.get("footer") or {}).get("text") or "") + len((e.get("author") or {}).get("name") or "")
        for f in e.get("fields") or []:
            total += len(f.get("name") or "") + len(f.get("value") or "")
    return total


def _check_option_order(options: list[dict[str, Any]], where: str) -> None:
    seen_optional = False
    for index, option in enumerate(options):
        if option.get("type") in (1, 2):
            _check_option_order(option.get("options") or [], f"{where}.{index}.options")
            continue
        if option.get("required"):
            if seen_optional:
                raise form_error(
                    f"{where}.{index}",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
