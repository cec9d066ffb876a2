"""SPEC §4a for moderators, end to end: /videoadmin audit, with the real bot, the loopback
Discord, the Runware simulator and a real SQLite file."""

from __future__ import annotations

import re

from bot.core.models import Period, Scope
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import ask
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld

GUILD = 1000
_TIMESTAMP = re.compile(r"<t:\d+:f>")


# -- /videoadmin audit -------------------------------------------------------------------------------------------


async def test_a_moderators_changes_appear_in_the_audit_newest_first_with_old_and_new_values(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    helpers = fake.add_role(w.guild, "Helpers")
    carol = fake.add_member(w.guild, "carol", roles=[helpers])
    studio = fake.add_channel(w.guild, "studio")
    bot = await make_bot()
    mod, alice = w.moderator, w.member
    for name, opts in [
        ("limits set", {"period": "day", "amount": 1.5, "member": alice}),
        ("limits set", {"period": "day", "amount": 2.25, "member": alice}),
        ("videoadmin safety", {"mode": "fast"}),
        ("videoadmin channel", {"channel": studio, "pool": True}),
        ("videoadmin moderator-role", {"role": helpers}),
        ("videoadmin concurrency", {"per_member": 3}),
    ]:
        assert (await ask(fake, name, opts, user=mod, channel=w.channel)).startswith("✅"), name
    assert (await ask(fake, "limits clear", {"period": "day", "member": alice}, user=carol, channel=w.channel))[
        0
    ] == "✅"

    text = await ask(fake, "videoadmin audit", {}, user=mod, channel=w.channel)
    lines = text.split("\n")
    assert lines[0] == "**Latest 7 changes**, newest first (times in your time zone):"
    a, m, c = alice.user.id, mod.user.id, carol.user.id
    assert [re.sub(r"^• <t:\d+:f> · ", "", line) for line in lines[1:]] == [
        f"<@{c}> · <@{a}>'s daily limit cleared: $2.25 → none",
        f"<@{m}> · Unfinished jobs per member: the default → 3",
        f"<@{m}> · Moderator role: none → <@&{helpers.id}>",
        f"<@{m}> · <#{studio.id}> team pool: off → on",
        f"<@{m}> · Safety checks: the default → fast",
        f"<@{m}> · <@{a}>'s daily limit set: $1.50 → $2.25",
        f"<@{m}> · <@{a}>'s daily limit set: none → $1.50",
    ]
    assert all(_TIMESTAMP.search(line) for line in lines[1:])

    # `member` keeps one moderator's changes; `count` the latest few.
    text = await ask(fake, "videoadmin audit", {"member": carol}, user=mod, channel=w.channel)
    assert text.startswith(f"**Latest 1 change by <@{c}>**") and text.count("\n• ") == 1
    text = await ask(fake, "videoadmin audit", {"count": 2}, user=carol, channel=w.channel)  # the moderator role
    assert (
        text.startswith("**Latest 2 changes**") and "cleared" in text and "Unfinished" in text and "Safety" not in text
    )
    text = await ask(fake, "videoadmin audit", {"member": alice}, user=mod, channel=w.channel)
    assert text == f"No changes by <@{a}> are recorded in this server yet."

    # A plain member is refused, and sees nothing of the trail.
    text = await ask(fake, "videoadmin audit", {}, user=alice, channel=w.channel)
    assert text == "You need Manage Server or the Helpers role to change the video bot's server settings."
    assert len(await bot.engine.guilds.audit_rows(GUILD, 100)) == 7


async def test_a_long_audit_is_split_into_whole_rows_over_several_messages_each_within_discords_limit(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot()
    guilds, mod = bot.engine.guilds, w.moderator
    for n in range(60):  # the store writes the same rows the commands do
        await guilds.set_limit(GUILD, mod.user.id, Scope.ROLE, 10_000 + n, Period.WEEK, 1_000_000 + n)
    h = await fake.send_command("videoadmin audit", {"count": 50}, user=mod, channel=w.channel)
    await h.wait_deferred()
    await fake.wait_until(lambda: any("part" in m.content for m in h.followups), 10, "the first part")
    total = int(re.search(r"\(part 1 of (\d+)\)", h.followups[0].content).group(1))  # type: ignore[union-attr]
    pages = await h.wait_followups(total)
    assert total >= 2 and len(pages) == total
    rows = [line for p in pages for line in p.content.split("\n") if line.startswith("• ")]
    assert len(rows) == 50, "whole rows, none cut or repeated"
    targets = [int(m) for m in re.findall(r"with <@&(\d+)>", "\n".join(rows))]
    assert targets == list(range(10_059, 10_009, -1)), "newest first"
    for n, page in enumerate(pages, start=1):
        assert page.ephemeral and len(page.content) <= 2000 and f"(part {n} of {total})" in page.content
