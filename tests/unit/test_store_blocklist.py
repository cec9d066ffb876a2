"""BlocklistStore on both backends: phrases per server, the version every change bumps, the cap, the audit rows."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.blocklist import BlocklistFull
from bot.store.blocklist import BlocklistStore
from bot.store.driver import Database
from bot.store.guilds import GuildDefaults, GuildStore

GUILD, OTHER, MOD = 1000, 2000, 7


async def test_add_and_remove_bump_the_version_and_are_audited(database: Database) -> None:
    store = BlocklistStore(database)
    assert await store.version(GUILD) == 0
    added = await store.add(GUILD, MOD, "  Forbidden   words ")
    assert (added.phrase, added.changed, added.count) == ("Forbidden words", True, 1)
    again = await store.add(GUILD, MOD, "FORBIDDEN WORDS")  # the same phrase folded: nothing changes
    assert (again.phrase, again.changed, again.count) == ("Forbidden words", False, 1)
    assert await store.version(GUILD) == 1
    await store.add(GUILD, MOD, "cat")
    version, phrases = await store.snapshot(GUILD)
    assert version == 2 and sorted(phrases) == ["Forbidden words", "cat"]
    removed = await store.remove(GUILD, MOD, "CAT")
    assert (removed.phrase, removed.changed, removed.count) == ("cat", True, 1)
    missing = await store.remove(GUILD, MOD, "dog")
    assert (missing.changed, await store.version(GUILD)) == (False, 3)
    assert await store.phrases(OTHER) == [] and await store.version(OTHER) == 0  # servers are apart
    rows = await GuildStore(database, defaults=GuildDefaults()).audit_rows(GUILD, 10)
    assert [(r.action, r.old_value, r.new_value) for r in rows] == [
        ("blocklist.remove", "cat", None),
        ("blocklist.add", None, "cat"),
        ("blocklist.add", None, "Forbidden words"),
    ]


async def test_the_cap_holds_under_concurrent_adds(database: Database) -> None:
    """Count, then insert, under the server's lock: racing adds never list more than the cap."""
    store = BlocklistStore(database, cap=5)
    results = await asyncio.gather(*(store.add(GUILD, MOD, f"phrase {n}") for n in range(12)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, BlocklistFull)) == 7
    assert len(await store.phrases(GUILD)) == 5
    with pytest.raises(BlocklistFull):
        await store.add(GUILD, MOD, "one more")
