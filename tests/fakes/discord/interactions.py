"""Interactions the fake sends to the bot, and handles for tests to await the bot's responses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .models import FakeAttachment, FakeChannel, FakeGuild, FakeMember, FakeMessage, FakeRole, FakeUser

if TYPE_CHECKING:
    from .server import FakeDiscord

PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Interaction callback types
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {
        CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
    },
}

# Application command option types
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

AttachmentRef = FakeAttachment
DEFAULT_TIMEOUT = 5.0


class InteractionHandle:
    """One interaction sent to the bot; await the bot's callback, followups and edits through it."""

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        id: int,
        token: str,
        type: int,
        payload: dict[str, Any],
        user: FakeUser,
        guild_id: int | None,
        channel_id: int,
        message: FakeMessage | None = None,
    ) -> None:
        self.fake = fake
        self.id = id
        self.token = token
        self.type = type
        self.payload = payload
        self.user = user
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.message = message  # the message a component lives on
        self.callback_type: int | None = None
        self.callback_data: dict[str, Any] | None = None
        self.original: FakeMessage | None = None
        self.followups: list[FakeMessage] = []
        self.modal: dict[str, Any] | None = None
        self.autocomplete_choices: list[dict[str, Any]] | None = None
        self.expired = False

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} callback={self.callback_type}>"

    @property
    def deferred(self) -> bool:
        """Tell whether the bot answered with a deferral (type 5 or 6)."""
        return self.callback_type in (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_UPDATE_MESSAGE)

    @property
    def ephemeral(self) -> bool:
        """Tell whether the original response is ephemeral."""
        return self.original is not None and self.original.ephemeral

    @property
    def messages(self) -> list[FakeMessage]:
        """Return the original response and every followup, once each, oldest first."""
        seen: dict[int, FakeMessage] = {}
        for m in [self.original, *self.followups]:
            if m is not None:
                seen.setdefault(m.id, m)
        return list(seen.values())

    def expire(self) -> None:
        """Make the token stale, as 15 minutes later: callbacks 404 and webhook calls 401."""
        self.expired = True

    async def wait_response(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the bot's interaction callback and return its type."""
        await self.fake.wait_until(lambda: self.callback_type is not None, timeout, f"a callback to {self!r}")
        assert self.callback_type is not None
        return self.callback_type

    async def wait_deferred(self, timeout: float = DEFAULT_TIMEOUT) -> InteractionHandle:
        """Wait for the callback and check it is a deferral."""
        kind = await self.wait_response(timeout)
        if kind not in (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_UPDATE_MESSAGE):
            raise AssertionError(
                f"expected a deferral, the bot answered with callback type {kind}: {self.callback_data}"
            )
        return self

    async def wait_followups(self, n: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[FakeMessage]:
        """Wait until the bot has sent at least n followup messages."""
        await self.fake.wait_until(lambda: len(self.followups) >= n, timeout, f"{n} followup(s) to {self!r}")
        return list(self.followups)

    async def wait_modal(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait for a modal callback and return its data."""
        kind = await self.wait_response(timeout)
        if kind != MODAL or self.modal is None:
            raise AssertionError(f"expected a modal, the bot answered with callback type {kind}: {self.callback_data}")
        return self.modal

    async def wait_original(
        self, predicate: Callable[[FakeMessage], bool] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> FakeMessage:
        """Wait for the original response to exist, be done loading, and satisfy predicate."""

        def ready() -> bool:
            m = self.original
            return m is not None and not m.loading and (predicate is None or predicate(m))

        await self.fake.wait_until(ready, timeout, f"the original response of {self!r}")
        assert self.original is not None
        return self.original


def option_payloads(
    command: Mapping[str, Any] | None,
    path: list[str],
    values: Mapping[str, Any],
    guild: FakeGuild | None,
    fake: FakeDiscord,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Build data.options and data.resolved, checking values against the registered definition."""
    resolved: dict[str, dict[str, Any]] = {}
    leaf_defs: list[dict[str, Any]] | None = None
    if command is not None:
        leaf_defs = list(command.get("options") or [])
    wrappers: list[dict[str, Any]] = []
    for name in path[1:]:
        kind = SUB_COMMAND
        if leaf_defs is not None:
            found = next((o for o in leaf_defs if o["name"] == name and o["type"] in (1, 2)), None)
            if found is None:
                raise ValueError(f"/{' '.join(path)}: no subcommand {name!r} is registered")
            kind = found["type"]
            leaf_defs = list(found.get("options") or [])
        wrappers.append({"type": kind, "name": name, "options": []})
    if leaf_defs is not None:
        if any(o["type"] in (1, 2) for o in leaf_defs):
            raise ValueError(f"/{' '.join(path)} needs a subcommand")
        names = {o["name"] for o in leaf_defs}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"/{' '.join(path)}: unknown option(s) {sorted(unknown)}; registered: {sorted(names)}")
        missing = [o["name"] for o in leaf_defs if o.get("required") and o["name"] not in values]
        if missing:
            raise ValueError(f"/{' '.join(path)}: required option(s) missing: {missing}")
    leaf: list[dict[str, Any]] = []
    for name, value in values.items():
        definition = next((o for o in leaf_defs or [] if o["name"] == name), None)
        kind = definition["type"] if definition else _infer_type(value)
        leaf.append(
            {"name": name, "type": kind, "value": _option_value(kind, value, definition, guild, fake, resolved)}
        )
    options = leaf
    for wrapper in reversed(wrappers):
        wrapper["options"] = options
        options = [wrapper]
    return options, resolved


def _infer_type(value: Any) -> int:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, FakeAttachment):
        return ATTACHMENT
    if isinstance(value, FakeUser | FakeMember):
        return USER
    if isinstance(value, FakeRole):
        return ROLE
    if isinstance(value, FakeChannel):
        return CHANNEL
    raise TypeError(f"cannot infer an option type for {value!r}")


def _option_value(
    kind: int,
    value: Any,
    definition: Mapping[str, Any] | None,
    guild: FakeGuild | None,
    fake: FakeDiscord,
    resolved: dict[str, dict[str, Any]],
) -> Any:
    label = definition["name"] if definition else "?"
    if kind == STRING:
        if not isinstance(value, str):
            raise TypeError(f"option {label}: expected a string, got {value!r}")
        if definition:
            if len(value) < definition.get("min_length", 0):
                raise ValueError(f"option {label}: Discord's client refuses under {definition['min_length']} chars")
            if len(value) > definition.get("max_length", 6000):
                raise ValueError(f"option {label}: Discord's client refuses over {definition['max_length']} chars")
        _check_choice(label, value, definition)
        return value
    if kind in (INTEGER, NUMBER):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind == INTEGER and isinstance(value, float))
        ):
            raise TypeError(f"option {label}: expected a {'integer' if kind == INTEGER else 'number'}, got {value!r}")
        if definition:
            if "min_value" in definition and value < definition["min_value"]:
                raise ValueError(f"option {label}: below min_value {definition['min_value']}")
            if "max_value" in definition and value > definition["max_value"]:
                raise ValueError(f"option {label}: above max_value {definition['max_value']}")
        _check_choice(label, value, definition)
        return value
    if kind == BOOLEAN:
        if not isinstance(value, bool):
            raise TypeError(f"option {label}: expected a bool, got {value!r}")
        return value
    if kind == ATTACHMENT:
        if not isinstance(value, FakeAttachment):
            raise TypeError(f"option {label}: pass the AttachmentRef from fake.add_attachment(), got {value!r}")
        resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
        return str(value.id)
    if kind in (USER, MENTIONABLE) and (isinstance(value, FakeUser | FakeMember) or kind == USER):
        user = fake._user_of(value)
        resolved.setdefault("users", {})[str(user.id)] = user.payload()
        member = guild.members.get(user.id) if guild else None
        if member is not None:
            data = member.payload(with_user=False)
            data["permissions"] = str(guild.base_permissions(member)) if guild else "0"
            resolved.setdefault("members", {})[str(user.id)] = data
        return str(user.id)
    if kind in (ROLE, MENTIONABLE):
        role = value if isinstance(value, FakeRole) else (guild.roles.get(int(value)) if guild else None)
        if role is None:
            raise ValueError(f"option {label}: unknown role {value!r}")
        resolved.setdefault("roles", {})[str(role.id)] = role.payload()
        return str(role.id)
    if kind == CHANNEL:
        channel = value if isinstance(value, FakeChannel) else fake.channels.get(int(value))
        if channel is None:
            raise ValueError(f"option {label}: unknown channel {value!r}")
        allowed_types = (definition or {}).get("channel_types")
        if allowed_types and channel.type not in allowed_types:
            raise ValueError(f"option {label}: channel type {channel.type} not in {allowed_types}")
        data = {
            k: v
            for k, v in channel.payload().items()
            if k in ("id", "type", "name", "parent_id", "thread_metadata", "guild_id", "flags")
        }
        if guild is not None:
            data["permissions"] = str(guild.permissions_in(guild.members[fake.bot_user.id], channel))
        resolved.setdefault("channels", {})[str(channel.id)] = data
        return str(channel.id)
    raise ValueError(f"option {label}: unsupported option type {kind}")


def _check_choice(label: str, value: Any, definition: Mapping[str, Any] | None) -> None:
    choices = (definition or {}).get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"option {label}: {value!r} is not one of the choices {[c['value'] for c in choices]}")


def modal_submit_components(modal: Mapping[str, Any] | None, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Build a modal submission's components, mirroring the modal the bot showed (rows or labels)."""
    if modal is None:  # no modal shown through a handle: plain action rows of text inputs
        return [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for top in modal.get("components") or []:
        if top.get("type") == 1:
            row = [s for s in (_submitted(c, values, used) for c in top.get("components") or []) if s is not None]
            out.append({"type": 1, **_id(top), "components": row})
        elif top.get("type") == 18:
            inner = _submitted(top["component"], values, used)
            if inner is not None:
                out.append({"type": 18, **_id(top), "component": inner})
        elif top.get("type") == 10:
            out.append({"type": 10, **_id(top)})
    unknown = set(values) - used
    if unknown:
        raise ValueError(f"the modal has no field(s) {sorted(unknown)}")
    return out


def _submitted(component: Mapping[str, Any], values: Mapping[str, Any], used: set[str]) -> dict[str, Any] | None:
    custom_id = component.get("custom_id")
    kind = component.get("type")
    if custom_id is None:
        return None
    if kind == 4:  # text input
        value = values.get(custom_id, component.get("value") or "")
        if custom_id in values:
            used.add(custom_id)
        if component.get("required", True) and not value:
            raise ValueError(f"modal field {custom_id!r} is required")
        if value and len(value) < component.get("min_length", 0):
            raise ValueError(f"modal field {custom_id!r}: Discord's client refuses under {component['min_length']}")
        if len(value) > component.get("max_length", 4000):
            raise ValueError(f"modal field {custom_id!r}: Discord's client refuses over {component['max_length']}")
        return {"type": 4, **_id(component), "custom_id": custom_id, "value": value}
    if kind in (3, 5, 6, 7, 8):  # selects
        chosen = values.get(custom_id, [])
        if custom_id in values:
            used.add(custom_id)
        return {"type": kind, **_id(component), "custom_id": custom_id, "values": list(chosen)}
    return None


def _id(component: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": component["id"]} if "id" in component else {}
