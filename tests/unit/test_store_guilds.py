"""GuildStore: defaults merged with overrides, channel rules, limits, and an audit row for every change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.models import Period, SafetyMode, Scope
from bot.core.policy import Limit
from bot.store.guilds import ChannelRule, GuildConfig, GuildDefaults, GuildStore
from bot.store.interface import Database

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
GUILD, MOD = 100, 900


@pytest.fixture
def guilds(db: Database) -> GuildStore:
    return GuildStore(db, defaults=GuildDefaults(variations_cap=3, concurrent_per_member=2), clock=lambda: NOW)


async def test_an_untouched_server_gets_the_defaults(guilds: GuildStore) -> None:
    assert await guilds.get(GUILD) == GuildConfig(
        guild_id=GUILD,
        default_resolution="768p",
        default_duration=6,
        variations_cap=3,
        prompt_optimizer=False,
        safety_mode=SafetyMode.NONE,
        concurrent_per_member=2,
        moderator_role_id=None,
        paused=False,
    )
    assert await guilds.audit_rows(GUILD) == []


async def test_update_returns_old_and_new_and_audits_each_changed_field(guilds: GuildStore) -> None:
    old, new = await guilds.update(GUILD, MOD, default_resolution="1080p", variations_cap=5, paused=True)
    assert (old.default_resolution, old.variations_cap, old.paused) == ("768p", 3, False)
    assert (new.default_resolution, new.variations_cap, new.paused) == ("1080p", 5, True)
    assert await guilds.get(GUILD) == new
    rows = await guilds.audit_rows(GUILD)
    assert {(r.action, r.target, r.old_value, r.new_value) for r in rows} == {
        ("setting", "default_resolution", None, "1080p"),
        ("setting", "variations_cap", None, "5"),
        ("setting", "paused", None, "1"),
    }
    assert all(r.actor_id == MOD and r.at == NOW and r.guild_id == GUILD for r in rows)

    _, again = await guilds.update(GUILD, MOD, variations_cap=5, safety_mode=SafetyMode.FULL)
    assert again.safety_mode is SafetyMode.FULL
    assert len(await guilds.audit_rows(GUILD)) == 4  # the unchanged cap wrote nothing
    assert (await guilds.get(GUILD + 1)).default_resolution == "768p"  # other servers untouched


async def test_none_resets_a_setting_to_the_default(guilds: GuildStore) -> None:
    await guilds.update(GUILD, MOD, concurrent_per_member=5, moderator_role_id=42)
    _, new = await guilds.update(GUILD, MOD, concurrent_per_member=None)
    assert new.concurrent_per_member == 2 and new.moderator_role_id == 42
    assert (await guilds.audit_rows(GUILD, limit=1))[0].new_value is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"colour": "red"}, TypeError),
        ({"default_resolution": "4k"}, ValueError),
        ({"default_duration": 7}, ValueError),
        ({"variations_cap": 21}, ValueError),
        ({"concurrent_per_member": 0}, ValueError),
        ({"paused": 1}, TypeError),
        ({"safety_mode": "loud"}, ValueError),
    ],
)
async def test_bad_settings_are_refused_and_nothing_is_written(
    guilds: GuildStore, changes: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await guilds.update(GUILD, MOD, **changes)
    assert await guilds.audit_rows(GUILD) == []


async def test_channel_rules(guilds: GuildStore) -> None:
    assert await guilds.channel_rule(GUILD, 10) == ChannelRule(10, allowed=False, threads=False, pool=False)
    assert await guilds.allowed_channels(GUILD) == set()
    old, new = await guilds.set_channel(GUILD, 10, MOD, allowed=True, pool=True)
    assert old == ChannelRule(10) and new == ChannelRule(10, allowed=True, threads=False, pool=True)
    _, new = await guilds.set_channel(GUILD, 10, MOD, threads=True)
    assert new == ChannelRule(10, allowed=True, threads=True, pool=True)  # unspecified flags keep their value
    await guilds.set_channel(GUILD, 11, MOD, allowed=True)
    await guilds.set_channel(GUILD, 12, MOD, allowed=False)
    assert await guilds.allowed_channels(GUILD) == {10, 11}
    assert await guilds.pool_channels(GUILD) == {10}
    assert await guilds.allowed_channels(GUILD + 1) == set()
    targets = [(r.target, r.old_value, r.new_value) for r in reversed(await guilds.audit_rows(GUILD))]
    assert targets == [
        ("10:allowed", "0", "1"),
        ("10:pool", "0", "1"),
        ("10:threads", "0", "1"),
        ("11:allowed", "0", "1"),
    ]


async def test_limits_set_replace_clear_with_audit(guilds: GuildStore) -> None:
    old, new = await guilds.set_limit(GUILD, MOD, Scope.MEMBER, 5, Period.DAY, 1_000_000)
    assert old is None and new == Limit(Scope.MEMBER, 5, Period.DAY, 1_000_000)
    old, new = await guilds.set_limit(GUILD, MOD, Scope.MEMBER, 5, Period.DAY, 0)
    assert old == Limit(Scope.MEMBER, 5, Period.DAY, 1_000_000) and new.amount_micros == 0
    await guilds.set_limit(GUILD, MOD, Scope.SERVER, GUILD, Period.MONTH, 50_000_000)
    assert set(await guilds.limits(GUILD)) == {
        Limit(Scope.MEMBER, 5, Period.DAY, 0),
        Limit(Scope.SERVER, GUILD, Period.MONTH, 50_000_000),
    }
    assert await guilds.clear_limit(GUILD, MOD, Scope.MEMBER, 5, Period.DAY) == Limit(Scope.MEMBER, 5, Period.DAY, 0)
    assert await guilds.clear_limit(GUILD, MOD, Scope.MEMBER, 5, Period.DAY) is None
    assert await guilds.limits(GUILD) == [Limit(Scope.SERVER, GUILD, Period.MONTH, 50_000_000)]
    audit = [(r.action, r.target, r.old_value, r.new_value) for r in reversed(await guilds.audit_rows(GUILD))]
    assert audit == [
        ("limit.set", "member:5:day", None, "1000000"),
        ("limit.set", "member:5:day", "1000000", "0"),
        ("limit.set", f"server:{GUILD}:month", None, "50000000"),
        ("limit.clear", "member:5:day", "0", None),
    ]
    with pytest.raises(ValueError):
        await guilds.set_limit(GUILD, MOD, Scope.ROLE, 7, Period.WEEK, -1)


async def test_audit_rows_are_per_server_and_capped(guilds: GuildStore) -> None:
    for amount in range(5):
        await guilds.set_limit(GUILD, MOD, Scope.ROLE, 7, Period.WEEK, amount)
    await guilds.set_limit(GUILD + 1, MOD, Scope.ROLE, 7, Period.WEEK, 1)
    rows = await guilds.audit_rows(GUILD, limit=2)
    assert [r.new_value for r in rows] == ["4", "3"]
    assert len(await guilds.audit_rows(GUILD + 1)) == 1
