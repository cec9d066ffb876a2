"""BlocklistStore: each server's blocked phrases, a version number bumped with every change, every change audited.

Portable SQL (SQLite and PostgreSQL): the version is bumped with INSERT ... ON CONFLICT DO UPDATE, in the same
transaction as the change and its audit row, so a reader never sees a changed list under an old version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.blocklist import MAX_PHRASES, BlocklistFull, clean_phrase, phrase_key
from bot.core.models import utc_now
from bot.store.driver import Conn, Database, to_db_time
from bot.store.guilds import add_audit, settings_lock_key
from bot.store.jobs import Clock

log = logging.getLogger(__name__)

_BUMP = (
    "INSERT INTO blocklist_versions (guild_id, version) VALUES (?, 1) "
    "ON CONFLICT (guild_id) DO UPDATE SET version = blocklist_versions.version + 1"
)
_VERSION = "SELECT version FROM blocklist_versions WHERE guild_id = ?"
_PHRASES = "SELECT phrase FROM blocklist WHERE guild_id = ? ORDER BY phrase_key"


@dataclass(frozen=True, slots=True)
class BlocklistChange:
    """What an add or remove did: the phrase as listed (the stored one when it already existed), and the count."""

    phrase: str
    changed: bool
    count: int


async def _count(conn: Conn, guild_id: int) -> int:
    row = await conn.fetchone("SELECT COUNT(*) FROM blocklist WHERE guild_id = ?", (guild_id,))
    return int(row[0]) if row is not None else 0


class BlocklistStore:
    """Blocked phrases per server (at most MAX_PHRASES), read by the core's BlocklistGuard."""

    def __init__(self, db: Database, *, clock: Clock = utc_now, cap: int = MAX_PHRASES) -> None:
        self._db = db
        self._clock = clock
        self.cap = cap

    async def version(self, guild_id: int) -> int:
        """0 for a server that never had a phrase; bumped by every change."""
        row = await self._db.fetchone(_VERSION, (guild_id,))
        return int(row[0]) if row is not None else 0

    async def snapshot(self, guild_id: int) -> tuple[int, Sequence[str]]:
        """(version, phrases as listed), read together."""
        async with self._db.snapshot() as conn:
            row = await conn.fetchone(_VERSION, (guild_id,))
            phrases = [str(r[0]) for r in await conn.fetchall(_PHRASES, (guild_id,))]
        return (int(row[0]) if row is not None else 0), phrases

    async def phrases(self, guild_id: int) -> list[str]:
        return [str(r[0]) for r in await self._db.fetchall(_PHRASES, (guild_id,))]

    async def add(self, guild_id: int, actor_id: int, text: str) -> BlocklistChange:
        """List a phrase (InputError if not 1–100 characters, BlocklistFull at the cap); audited."""
        phrase = clean_phrase(text)
        key = phrase_key(phrase)
        now = self._clock()
        async with self._db.transaction() as conn:
            await conn.lock(settings_lock_key(guild_id))  # count, then insert: one change at a time per server
            existing = await conn.fetchone(
                "SELECT phrase FROM blocklist WHERE guild_id = ? AND phrase_key = ?", (guild_id, key)
            )
            count = await _count(conn, guild_id)
            if existing is not None:
                return BlocklistChange(str(existing[0]), False, count)
            if count >= self.cap:
                raise BlocklistFull(self.cap)
            await conn.execute(
                "INSERT INTO blocklist (guild_id, phrase_key, phrase, added_by, added_at) VALUES (?, ?, ?, ?, ?)",
                (guild_id, key, phrase, actor_id, to_db_time(now)),
            )
            await conn.execute(_BUMP, (guild_id,))
            await add_audit(
                conn,
                guild_id=guild_id,
                actor_id=actor_id,
                action="blocklist.add",
                target=key,
                old=None,
                new=phrase,
                at=now,
            )
        log.info("guild=%s actor=%s blocked a phrase (%d listed)", guild_id, actor_id, count + 1)
        return BlocklistChange(phrase, True, count + 1)

    async def remove(self, guild_id: int, actor_id: int, text: str) -> BlocklistChange:
        """Unlist a phrase, matched in its folded form (so `CAT` removes `cat`); audited when something went."""
        phrase = " ".join(text.split())
        key = phrase_key(phrase)
        now = self._clock()
        async with self._db.transaction() as conn:
            rows = await conn.fetchall(
                "DELETE FROM blocklist WHERE guild_id = ? AND phrase_key = ? RETURNING phrase", (guild_id, key)
            )
            if rows:
                phrase = str(rows[0][0])
                await conn.execute(_BUMP, (guild_id,))
                await add_audit(
                    conn,
                    guild_id=guild_id,
                    actor_id=actor_id,
                    action="blocklist.remove",
                    target=key,
                    old=phrase,
                    new=None,
                    at=now,
                )
            count = await _count(conn, guild_id)
        if rows:
            log.info("guild=%s actor=%s unblocked a phrase (%d listed)", guild_id, actor_id, count)
        return BlocklistChange(phrase, bool(rows), count)
