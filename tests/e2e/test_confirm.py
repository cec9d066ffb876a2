"""/videoadmin confirm-above (SPEC §4a): costly jobs ask first; nothing is reserved until Start."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import job_count, ledger, video, video_tasks
from tests.fakes.discord import FakeDiscord, FakeMessage, InteractionHandle
from tests.fakes.discord.world import DiscordWorld


async def confirm_above(fake: FakeDiscord, w: DiscordWorld, amount: float) -> str:
    h = await fake.send_command("videoadmin confirm-above", {"amount": amount}, user=w.moderator, channel=w.channel)
    [answer] = await h.wait_followups(1)
    return answer.content


async def click_answer(fake: FakeDiscord, msg: FakeMessage, custom_id: str, user: object) -> FakeMessage:
    h: InteractionHandle = await fake.click(msg, custom_id, user=user)  # type: ignore[arg-type]
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral, answer.content
    return answer


async def offer_for(fake: FakeDiscord, w: DiscordWorld, prompt: str) -> tuple[FakeMessage, int]:
    _, offer = await video(fake, w, {"prompt": prompt})
    [start, cancel] = offer.custom_ids()
    assert start.startswith("hailuo:offer-start:") and cancel.startswith("hailuo:offer-cancel:")
    return offer, int(start.rsplit(":", 1)[1])


async def nothing_reserved(bot: LoopbackBot, sim: RunwareSimulator) -> None:
    assert await job_count(bot) == 0 and await ledger(bot) == [] and video_tasks(sim) == []


async def test_a_job_at_or_above_the_amount_asks_first_and_start_reserves_it_once(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot()
    said = await confirm_above(fake_discord, w, 0.28)
    assert "$0.28" in said
    row = await bot.engine.db.fetchone("SELECT target, old_value, new_value, actor_id FROM audit")
    assert row is not None and tuple(row) == ("confirm_above_micros", None, "280000", w.moderator.user.id)

    offer, offer_id = await offer_for(fake_discord, w, "a paper boat in a gutter stream")
    assert "$0.28" in offer.content and "Nothing is reserved until you press Start" in offer.content
    assert "left" in offer.content
    await nothing_reserved(bot, e2e_sim)

    started = await click_answer(fake_discord, offer, f"hailuo:offer-start:{offer_id}", w.member)
    assert "Job #1 is on its way" in started.content
    assert [(job, status) for job, status, _, _ in await ledger(bot)] == [(1, "held")]
    assert len(video_tasks(e2e_sim)) == 1

    again = await click_answer(fake_discord, offer, f"hailuo:offer-start:{offer_id}", w.member)
    assert "already answered" in again.content
    assert await job_count(bot) == 1 and len(video_tasks(e2e_sim)) == 1


async def test_start_clicked_twice_at_once_starts_one_job(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot()
    await confirm_above(fake_discord, w, 0.1)
    offer, offer_id = await offer_for(fake_discord, w, "two clicks, one job")
    cid = f"hailuo:offer-start:{offer_id}"
    a, b = await asyncio.gather(
        click_answer(fake_discord, offer, cid, w.member), click_answer(fake_discord, offer, cid, w.member)
    )
    texts = sorted([a.content, b.content])
    assert sum("is on its way" in t for t in texts) == 1 and sum("already answered" in t for t in texts) == 1
    assert await job_count(bot) == 1 and len(video_tasks(e2e_sim)) == 1


async def test_cancel_starts_nothing_and_a_later_start_is_refused(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot()
    await confirm_above(fake_discord, w, 0.2)
    offer, offer_id = await offer_for(fake_discord, w, "a kite over dunes")
    cancelled = await click_answer(fake_discord, offer, f"hailuo:offer-cancel:{offer_id}", w.member)
    assert "nothing was started, reserved or charged" in cancelled.content
    late = await click_answer(fake_discord, offer, f"hailuo:offer-start:{offer_id}", w.member)
    assert "already answered" in late.content
    await nothing_reserved(bot, e2e_sim)


async def test_a_start_after_the_offer_window_says_it_expired_and_reserves_nothing(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot()
    await confirm_above(fake_discord, w, 0.2)
    bot.engine.offers.window = timedelta(0)  # the 5 minutes have passed by the time anyone clicks
    offer, offer_id = await offer_for(fake_discord, w, "a snail racing a leaf")
    late = await click_answer(fake_discord, offer, f"hailuo:offer-start:{offer_id}", w.member)
    assert "This offer expired" in late.content and "Nothing was reserved" in late.content
    await nothing_reserved(bot, e2e_sim)


async def test_below_the_amount_or_at_zero_nothing_asks_and_reroll_asks_too(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    _, answer = await video(fake_discord, w, {"prompt": "no question asked"})  # 0 (the default): never asks
    assert "Job #1 is on its way" in answer.content
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    await confirm_above(fake_discord, w, 5)
    _, answer = await video(fake_discord, w, {"prompt": "still cheap enough"})
    assert "Job #2 is on its way" in answer.content
    await confirm_above(fake_discord, w, 0.28)
    h = await fake_discord.click(result, "hailuo:reroll:1", user=w.member)
    [offer] = await h.wait_followups(1)
    assert offer.ephemeral and "hailuo:offer-start:" in " ".join(offer.custom_ids())
    assert len(video_tasks(e2e_sim)) == 2


async def test_animate_and_extend_ask_first_too_and_start_runs_them_with_their_frame(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """The offer keeps the whole plan (the frame image, what an extension continues) until Start."""
    import base64

    from tests.e2e.video_support import png_bytes, upload_tasks
    from tests.fakes.discord.message_commands import post_as, send_message_command

    w = discord_world
    e2e_sim.varied_clips = True
    bot = await make_bot()
    await confirm_above(fake_discord, w, 0.28)
    image = png_bytes(800, 450, (30, 160, 90))
    posted = await post_as(fake_discord, w.member, w.channel, "", [("leaf.png", image)])
    h = await send_message_command(fake_discord, "Animate image", posted, user=w.member)
    await h.wait_modal()
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "the leaf falls"})
    [offer] = await sub.wait_followups(1)
    assert "hailuo:offer-start:1" in offer.custom_ids()
    await nothing_reserved(bot, e2e_sim)
    started = await click_answer(fake_discord, offer, "hailuo:offer-start:1", w.member)
    assert "Job #1 is on its way" in started.content
    [upload] = upload_tasks(e2e_sim)
    assert base64.b64decode(upload["image"].split(",", 1)[-1]) == image

    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    post = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:extend:1" in m.custom_ids(), timeout=10)
    h = await fake_discord.click(post, "hailuo:extend:1", user=w.member)
    await h.wait_modal()
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "the leaf lands"})
    [offer] = await sub.wait_followups(1)
    assert len(video_tasks(e2e_sim)) == 1 and await job_count(bot) == 1
    started = await click_answer(fake_discord, offer, "hailuo:offer-start:2", w.member)
    assert "Job #2 is on its way" in started.content
    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    second = await fake_discord.wait_for_message(w.channel, lambda m: len(m.attachments) == 2, timeout=15)
    assert "hailuo-2-1-extended.mp4" in [a.filename for a in second.attachments]
