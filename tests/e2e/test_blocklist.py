"""SPEC §4a for moderators, end to end: /videoadmin blocklist, with the real bot, the loopback
Discord, the Runware simulator and a real SQLite file."""

from __future__ import annotations

import re
from typing import Any

from bot.core.blocklist import BlockedPrompt
from bot.core.service import FrameRef, Requester, VideoOptions
from bot.simulator.server import RunwareSimulator
from bot.store.blocklist import BlocklistStore
from bot.store.sqlite.db import Database
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import answers, ask, result_messages, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld

GUILD = 1000
_TIMESTAMP = re.compile(r"<t:\d+:f>")


# -- /videoadmin blocklist ---------------------------------------------------------------------------------------


async def test_the_blocklist_refuses_a_listed_phrase_in_any_case_or_width_and_not_inside_longer_words(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot()
    mod, alice = w.moderator, w.member

    async def admin(name: str, **opts: Any) -> str:
        return await ask(fake, f"videoadmin blocklist {name}", opts, user=mod, channel=w.channel)

    async def video(prompt: str) -> str:
        return await ask(fake, "video", {"prompt": prompt}, user=alice, channel=w.channel)

    assert await admin("list") == "No phrases are blocked in this server. Add one with /videoadmin blocklist add."
    assert (await admin("add", phrase="cat")).startswith("✅ Blocked “cat”: prompts holding it")
    assert (await admin("add", phrase="  red   panda ")).startswith("✅ Blocked “red panda”")
    assert await admin("add", phrase="ＣＡＴ") == "“cat” is already blocked, so nothing changed."

    refusal = "This server does not allow “cat” in prompts."
    for prompt in ("a CAT on a hot tin roof", "a Ｃａｔ on a roof", "cat.", "the ｃａｔ's whiskers", "a c\u200bat nap"):
        assert await video(prompt) == refusal, prompt
    assert await video("a RED \n\t Panda eating bamboo") == "This server does not allow “red panda” in prompts."
    assert video_tasks(e2e_sim) == [], "nothing reached Runware for a refused prompt"
    assert await bot.engine.db.fetchone("SELECT 1 FROM jobs") is None, "nothing was reserved"

    # Only part of a longer word: allowed.
    assert (await video("a category of catamarans and a redpanda plush")).startswith("Job #1 is on its way")
    assert len(video_tasks(e2e_sim)) == 1

    text = await admin("list")
    assert text.startswith("**Blocked phrases** (2 of 200)") and "• “cat”" in text and "• “red panda”" in text
    assert await admin("remove", phrase="CAT") == "✅ Removed “cat” from the blocklist (1 phrase still blocked)."
    assert await admin("remove", phrase="cat") == (
        "“cat” is not on this server's blocklist, so nothing changed. See /videoadmin blocklist list."
    )
    assert (await video("a cat on a hot tin roof")).startswith("Job #2 is on its way")
    rows = [r for r in await bot.engine.guilds.audit_rows(GUILD) if r.action.startswith("blocklist")]
    assert [(r.action, r.old_value, r.new_value, r.actor_id) for r in reversed(rows)] == [
        ("blocklist.add", None, "cat", mod.user.id),
        ("blocklist.add", None, "red panda", mod.user.id),
        ("blocklist.remove", "cat", None, mod.user.id),
    ]
    text = await ask(fake, "videoadmin audit", {"count": 3}, user=mod, channel=w.channel)
    assert text.split("\n")[1].endswith(f"<@{mod.user.id}> · Blocked phrase removed: “cat”")
    assert text.split("\n")[2].endswith(f"<@{mod.user.id}> · Blocked phrase added: “red panda”")
    # 1–100 characters; a plain member can't touch the list.
    assert (await admin("add", phrase="x" * 100)).startswith("✅")
    text = await ask(fake, "videoadmin blocklist add", {"phrase": "dog"}, user=alice, channel=w.channel)
    assert text.startswith("You need the Manage Server permission")
    assert "dog" not in await admin("list")


async def test_a_blocked_phrase_is_shown_inert_and_the_list_is_capped_at_200(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot()
    mod = w.moderator
    await ask(fake, "videoadmin blocklist add", {"phrase": "@everyone"}, user=mod, channel=w.channel)
    await ask(fake, "videoadmin blocklist add", {"phrase": "**loud** _words_"}, user=mod, channel=w.channel)
    [refused] = await answers(fake, "video", {"prompt": "hey @everyone look"}, user=w.member, channel=w.channel)
    assert refused.content == "This server does not allow “@\u200beveryone” in prompts."
    assert refused.allowed_mentions == {"parse": []}
    text = await ask(fake, "video", {"prompt": "some **LOUD** _words_ here"}, user=w.member, channel=w.channel)
    assert text == "This server does not allow “\\*\\*loud\\*\\* \\_words\\_” in prompts."

    store = bot.engine.blocklists
    for n in range(198):
        await store.add(GUILD, mod.user.id, f"word{n}")
    text = await ask(fake, "videoadmin blocklist add", {"phrase": "one more"}, user=mod, channel=w.channel)
    assert text == (
        "This server already blocks 200 phrases, the most allowed. Remove one with /videoadmin blocklist remove first."
    )
    listing = await ask(fake, "videoadmin blocklist list", {}, user=mod, channel=w.channel)
    assert listing.startswith("**Blocked phrases** (200 of 200)") and listing.endswith("more.")


async def test_remix_reroll_and_an_extend_like_followup_are_checked_too_and_a_change_elsewhere_is_seen_at_once(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot()
    mod, alice = w.moderator, w.member
    assert (await ask(fake, "video", {"prompt": "a tuba on a hill"}, user=alice, channel=w.channel)).startswith(
        "Job #1"
    )
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake.wait_until(lambda: bool(result_messages(fake, w.channel)), 10, "the clip")
    [result] = result_messages(fake, w.channel)

    # Another process (here: a second connection to the same database file) blocks "tuba": seen at once.
    other = Database(bot.engine.settings.database.path)
    await other.open()
    try:
        await BlocklistStore(other).add(GUILD, mod.user.id, "Tuba")
    finally:
        await other.close()
    h = await fake.click(result, "hailuo:reroll:1", user=alice)
    [answer] = await h.wait_followups(1)
    assert answer.content == "This server does not allow “Tuba” in prompts."

    h = await fake.click(result, "hailuo:remix:1", user=alice)
    await h.wait_modal()
    sub = await fake.submit_modal(handle=h, values={"prompt": "two TUBAS and a TUBA"})
    [answer] = await sub.wait_followups(1)
    assert answer.content == "This server does not allow “Tuba” in prompts." and answer.ephemeral
    assert len(video_tasks(e2e_sim)) == 1, "neither reached Runware"

    # Extend (and Animate) plan through the same path: a follow-up with the clip's frame as its first frame.
    service = bot.engine.service
    who = Requester(guild_id=GUILD, channel_id=w.channel.id, user_id=alice.user.id)
    opts = VideoOptions(prompt="the tuba rolls downhill", frames=(FrameRef(image="some-image-uuid", frame="first"),))
    try:
        await service.plan(opts, who)
    except BlockedPrompt as exc:
        assert exc.phrase == "Tuba"
    else:
        raise AssertionError("an extend-like follow-up was not checked")

    # The matcher is compiled once per change, not per prompt.
    guard = service.blocklist
    assert guard is not None
    before = guard.compiled
    for _ in range(3):
        await service.plan(VideoOptions(prompt="a quiet hill"), who)
    text = await ask(fake, "video", {"prompt": "a quiet hill"}, user=alice, channel=w.channel)
    assert text.startswith("Job #2")
    assert guard.compiled == before
