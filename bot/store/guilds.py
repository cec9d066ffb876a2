"""GuildStore: per-server settings, channel rules and spend limits, each change audited in the same transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from bot.core.models import Period, SafetyMode, Scope, utc_now
from bot.core.policy import DURATIONS, MAX_VARIATIONS, RESOLUTIONS, Limit
from bot.store.driver import Conn, Database, Row, from_db_time, marks, to_db_time
from bot.store.jobs import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuildDefaults:
    """What a server gets before its moderators change anything (config file plus built-ins)."""

    variations_cap: int = 4
    concurrent_per_member: int = 2
    default_resolution: str = "768p"
    default_duration: int = 6
    prompt_optimizer: bool = False
    safety_mode: SafetyMode = SafetyMode.NONE


@dataclass(frozen=True, slots=True)
class GuildConfig:
    """A server's effective settings, already merged with the defaults."""

    guild_id: int
    default_resolution: str
    default_duration: int
    variations_cap: int
    prompt_optimizer: bool
    safety_mode: SafetyMode
    concurrent_per_member: int
    moderator_role_id: int | None
    paused: bool
    confirm_above_micros: int = 0  # a job whose estimate is at least this asks first (0: never)


@dataclass(frozen=True, slots=True)
class ChannelRule:
    channel_id: int
    allowed: bool = False
    threads: bool = False
    pool: bool = False


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    guild_id: int
    actor_id: int
    action: str
    target: str
    old_value: str | None
    new_value: str | None
    at: datetime


#: Settings a moderator can change, with a check of each value (None always means "back to the default").
SETTING_FIELDS = (
    "default_resolution",
    "default_duration",
    "variations_cap",
    "prompt_optimizer",
    "safety_mode",
    "concurrent_per_member",
    "moderator_role_id",
    "paused",
    "confirm_above_micros",
)


def _check_setting(name: str, value: object) -> object:
    """Validate one value and return it in its stored form (bools as 0/1, enums as text)."""
    if value is None:
        return None
    if name in ("prompt_optimizer", "paused"):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool")
        return int(value)
    if name == "safety_mode":
        return str(SafetyMode(str(value)))
    if name == "default_resolution":
        if value not in RESOLUTIONS:
            raise ValueError(f"default_resolution must be one of {RESOLUTIONS}")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int")
    if name == "default_duration" and value not in DURATIONS:
        raise ValueError(f"default_duration must be one of {DURATIONS}")
    if name == "variations_cap" and not 1 <= value <= MAX_VARIATIONS:
        raise ValueError(f"variations_cap must be 1 to {MAX_VARIATIONS}")
    minimum = {"concurrent_per_member": 1, "confirm_above_micros": 0}.get(name)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def _text(value: object) -> str | None:
    return None if value is None else str(value)


async def add_audit(
    conn: Conn,
    *,
    guild_id: int,
    actor_id: int,
    action: str,
    target: str,
    old: object,
    new: object,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO audit (guild_id, actor_id, action, target, old_value, new_value, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (guild_id, actor_id, action, target, _text(old), _text(new), to_db_time(at)),
    )


def limit_from_row(row: Row) -> Limit:
    return Limit(Scope(row["scope"]), row["target_id"], Period(row["period"]), row["amount_micros"])


SELECT_LIMITS = (
    "SELECT scope, target_id, period, amount_micros FROM limits WHERE guild_id = ? ORDER BY scope, target_id"
)


async def configured_limits(conn: Conn, guild_id: int) -> list[Limit]:
    """The limits moderators set in a server (no config defaults), on a connection inside a transaction."""
    return [limit_from_row(row) for row in await conn.fetchall(SELECT_LIMITS, (guild_id,))]


def settings_lock_key(guild_id: int) -> str:
    """Moderator changes in a server read the old value, then write: across processes they take this lock."""
    return f"settings:{guild_id}"


def limit_target(scope: Scope, target_id: int, period: Period) -> str:
    return f"{scope.value}:{target_id}:{period.value}"


class GuildStore:
    """Per-server settings, channel rules and limits; every change writes an audit row in the same transaction."""

    def __init__(self, db: Database, *, defaults: GuildDefaults, clock: Clock = utc_now) -> None:
        self._db = db
        self._defaults = defaults
        self._clock = clock

    @property
    def defaults(self) -> GuildDefaults:
        return self._defaults

    def _merge(self, guild_id: int, row: Mapping[str, Any] | None) -> GuildConfig:
        d = self._defaults

        def pick(name: str, default: Any) -> Any:
            value = None if row is None else row[name]
            return default if value is None else value

        return GuildConfig(
            guild_id=guild_id,
            default_resolution=str(pick("default_resolution", d.default_resolution)),
            default_duration=int(pick("default_duration", d.default_duration)),
            variations_cap=min(int(pick("variations_cap", d.variations_cap)), MAX_VARIATIONS),
            prompt_optimizer=bool(pick("prompt_optimizer", d.prompt_optimizer)),
            safety_mode=SafetyMode(pick("safety_mode", d.safety_mode)),
            concurrent_per_member=int(pick("concurrent_per_member", d.concurrent_per_member)),
            moderator_role_id=pick("moderator_role_id", None),
            paused=bool(pick("paused", False)),
            confirm_above_micros=int(pick("confirm_above_micros", 0)),
        )

    @staticmethod
    def _as_mapping(row: Row | None) -> dict[str, Any] | None:
        return None if row is None else {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row

    async def get(self, guild_id: int) -> GuildConfig:
        row = await self._db.fetchone("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        return self._merge(guild_id, self._as_mapping(row))

    async def update(self, guild_id: int, actor_id: int, **changes: object) -> tuple[GuildConfig, GuildConfig]:
        """Change settings (None = back to the default); returns (old, new), one audit row per changed field."""
        unknown = set(changes) - set(SETTING_FIELDS)
        if unknown:
            raise TypeError(f"unknown guild setting(s): {', '.join(sorted(unknown))}")
        stored = {name: _check_setting(name, value) for name, value in changes.items()}
        now = self._clock()
        async with self._db.transaction() as conn:
            await conn.lock(settings_lock_key(guild_id))  # read, then write: one change at a time per server
            row = self._as_mapping(await conn.fetchone("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)))
            before = dict.fromkeys(SETTING_FIELDS) if row is None else {k: row[k] for k in SETTING_FIELDS}
            after = {**before, **stored}
            changed = [name for name in SETTING_FIELDS if before[name] != after[name]]
            if changed:
                cols = ", ".join(SETTING_FIELDS)
                await conn.execute(
                    f"INSERT INTO guild_settings (guild_id, {cols}, updated_at) "
                    f"VALUES (?, {marks(len(SETTING_FIELDS))}, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                    + ", ".join(f"{name} = excluded.{name}" for name in (*SETTING_FIELDS, "updated_at")),
                    (guild_id, *(after[name] for name in SETTING_FIELDS), to_db_time(now)),
                )
                for name in changed:
                    await add_audit(
                        conn,
                        guild_id=guild_id,
                        actor_id=actor_id,
                        action="setting",
                        target=name,
                        old=before[name],
                        new=after[name],
                        at=now,
                    )
        if changed:
            log.info("guild=%s actor=%s changed settings %s", guild_id, actor_id, ", ".join(changed))
        return self._merge(guild_id, row), self._merge(guild_id, after)

    # -- channels ------------------------------------------------------------------------------------------------

    @staticmethod
    def _rule(channel_id: int, row: Row | None) -> ChannelRule:
        if row is None:
            return ChannelRule(channel_id)
        return ChannelRule(channel_id, bool(row["allowed"]), bool(row["threads"]), bool(row["pool"]))

    async def channel_rule(self, guild_id: int, channel_id: int) -> ChannelRule:
        row = await self._db.fetchone(
            "SELECT allowed, threads, pool FROM channel_settings WHERE guild_id = ? AND channel_id = ?",
            (guild_id, channel_id),
        )
        return self._rule(channel_id, row)

    async def set_channel(
        self,
        guild_id: int,
        channel_id: int,
        actor_id: int,
        *,
        allowed: bool | None = None,
        threads: bool | None = None,
        pool: bool | None = None,
    ) -> tuple[ChannelRule, ChannelRule]:
        """Change a channel's rule (None leaves a flag as it is); returns (old, new)."""
        now = self._clock()
        async with self._db.transaction() as conn:
            await conn.lock(settings_lock_key(guild_id))  # read, then write: one change at a time per server
            old = self._rule(
                channel_id,
                await conn.fetchone(
                    "SELECT allowed, threads, pool FROM channel_settings WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                ),
            )
            new = replace(
                old,
                allowed=old.allowed if allowed is None else allowed,
                threads=old.threads if threads is None else threads,
                pool=old.pool if pool is None else pool,
            )
            if new != old:
                await conn.execute(
                    "INSERT INTO channel_settings (guild_id, channel_id, allowed, threads, pool) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET "
                    "allowed = excluded.allowed, threads = excluded.threads, pool = excluded.pool",
                    (guild_id, channel_id, int(new.allowed), int(new.threads), int(new.pool)),
                )
                for flag in (f.name for f in fields(ChannelRule) if f.name != "channel_id"):
                    before, after = getattr(old, flag), getattr(new, flag)
                    if before != after:
                        await add_audit(
                            conn,
                            guild_id=guild_id,
                            actor_id=actor_id,
                            action="channel",
                            target=f"{channel_id}:{flag}",
                            old=int(before),
                            new=int(after),
                            at=now,
                        )
        return old, new

    async def allowed_channels(self, guild_id: int) -> set[int]:
        rows = await self._db.fetchall(
            "SELECT channel_id FROM channel_settings WHERE guild_id = ? AND allowed = 1", (guild_id,)
        )
        return {int(row[0]) for row in rows}

    async def pool_channels(self, guild_id: int) -> set[int]:
        rows = await self._db.fetchall(
            "SELECT channel_id FROM channel_settings WHERE guild_id = ? AND pool = 1", (guild_id,)
        )
        return {int(row[0]) for row in rows}

    # -- limits --------------------------------------------------------------------------------------------------

    async def set_limit(
        self, guild_id: int, actor_id: int, scope: Scope, target_id: int, period: Period, amount_micros: int
    ) -> tuple[Limit | None, Limit]:
        """Set (or replace) one limit; 0 blocks. Returns (previous or None, new)."""
        if isinstance(amount_micros, bool) or not isinstance(amount_micros, int) or amount_micros < 0:
            raise ValueError("amount_micros must be a non-negative int")
        scope, period = Scope(scope), Period(period)
        now = self._clock()
        key = (guild_id, str(scope), target_id, str(period))
        async with self._db.transaction() as conn:
            await conn.lock(settings_lock_key(guild_id))  # read, then write: one change at a time per server
            row = await conn.fetchone(
                "SELECT * FROM limits WHERE guild_id = ? AND scope = ? AND target_id = ? AND period = ?",
                key,
            )
            old = None if row is None else limit_from_row(row)
            new = Limit(scope, target_id, period, amount_micros)
            await conn.execute(
                "INSERT INTO limits (guild_id, scope, target_id, period, amount_micros, set_by, set_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, scope, target_id, period) DO UPDATE SET "
                "amount_micros = excluded.amount_micros, set_by = excluded.set_by, set_at = excluded.set_at",
                (*key, amount_micros, actor_id, to_db_time(now)),
            )
            await add_audit(
                conn,
                guild_id=guild_id,
                actor_id=actor_id,
                action="limit.set",
                target=limit_target(scope, target_id, period),
                old=None if old is None else old.amount_micros,
                new=amount_micros,
                at=now,
            )
        log.info("guild=%s actor=%s set limit %s to %s micros", guild_id, actor_id, key[1:], amount_micros)
        return old, new

    async def clear_limit(
        self, guild_id: int, actor_id: int, scope: Scope, target_id: int, period: Period
    ) -> Limit | None:
        """Remove one limit; returns the removed one, or None (and no audit row) if there was none."""
        scope, period = Scope(scope), Period(period)
        key = (guild_id, str(scope), target_id, str(period))
        now = self._clock()
        async with self._db.transaction() as conn:
            await conn.lock(settings_lock_key(guild_id))  # read, then write: one change at a time per server
            rows = await conn.fetchall(
                "DELETE FROM limits WHERE guild_id = ? AND scope = ? AND target_id = ? AND period = ? "
                "RETURNING scope, target_id, period, amount_micros",
                key,
            )
            if not rows:
                return None
            old = limit_from_row(rows[0])
            await add_audit(
                conn,
                guild_id=guild_id,
                actor_id=actor_id,
                action="limit.clear",
                target=limit_target(scope, target_id, period),
                old=old.amount_micros,
                new=None,
                at=now,
            )
        log.info("guild=%s actor=%s cleared limit %s", guild_id, actor_id, key[1:])
        return old

    async def limits(self, guild_id: int) -> list[Limit]:
        return [limit_from_row(row) for row in await self._db.fetchall(SELECT_LIMITS, (guild_id,))]

    async def audit_rows(self, guild_id: int, limit: int = 50, *, actor_id: int | None = None) -> list[AuditRow]:
        """The server's most recent changes, newest first; with `actor_id`, only the changes that member made."""
        who, args = ("", (guild_id, limit)) if actor_id is None else (" AND actor_id = ?", (guild_id, actor_id, limit))
        rows = await self._db.fetchall(f"SELECT * FROM audit WHERE guild_id = ?{who} ORDER BY id DESC LIMIT ?", args)
        return [
            AuditRow(
                id=row["id"],
                guild_id=row["guild_id"],
                actor_id=row["actor_id"],
                action=row["action"],
                target=row["target"],
                old_value=row["old_value"],
                new_value=row["new_value"],
                at=from_db_time(row["at"]),
            )
            for row in rows
        ]
