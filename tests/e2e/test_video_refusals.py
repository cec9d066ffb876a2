"""/video refusals: bad input (SPEC §8), spend limits and Runware rejections — said plainly, nothing left held."""

from __future__ import annotations

from typing import Any

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    job_count,
    ledger,
    png_bytes,
    status_messages,
    upload_tasks,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld

MIB = 1024 * 1024


async def test_every_bad_input_gets_an_ephemeral_answer_naming_the_problem_and_nothing_is_sent_or_held(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    good = fake.add_attachment("ok.png", png_bytes())
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"prompt": "a"}, ["too short", "at least 2"]),
        ({"prompt": " ", "first_frame": fake.add_attachment("early.png", png_bytes())}, ["empty"]),
        ({"prompt": "x" * 2001}, ["too long", "2000"]),
        ({"prompt": "  \t  "}, ["empty"]),
        (
            {"prompt": "a cat", "first_frame": fake.add_attachment("notes.png", b"just some text, honest")},
            ["notes.png", "PNG, JPEG or WEBP"],
        ),
        ({"prompt": "a cat", "last_frame": fake.add_attachment("huge.png", bytes(11 * MIB))}, ["huge.png", "10 MiB"]),
        (
            {"prompt": "a cat", "first_frame": fake.add_attachment("cut.png", png_bytes()[:300])},
            ["cut.png", "could not be read"],
        ),
        ({"prompt": "a cat", "resolution": "1080p", "duration": 10}, ["768p: 6 or 10 s", "1080p: 6 s"]),
        ({"prompt": "a cat", "variations": 5}, ["between 1 and 4", "5"]),
        ({"prompt": "a cat", "first_frame": good, "variations": 7}, ["between 1 and 4"]),
    ]
    for i, (options, words) in enumerate(cases):
        _, answer = await video(fake, w, options)
        for word in words:
            assert word in answer.content, (i, answer.content)
        assert "Job #" not in answer.content and "Traceback" not in answer.content, (i, answer.content)
    assert e2e_sim.requests == [], "nothing may reach Runware"
    assert await job_count(hailuo) == 0 and await ledger(hailuo) == []
    assert fake.channel_messages(w.channel) == []
    # The oversized attachment was refused from its declared size: the bot never downloaded it.
    cdn = [r.path for r in fake.requests if r.template == "CDN /attachments"]
    assert not any("huge.png" in p for p in cdn), cdn
    assert not any("early.png" in p for p in cdn), "a bad prompt is refused before attachments are downloaded"


async def test_a_paused_server_refuses_new_jobs_plainly(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    await hailuo.engine.guilds.update(1000, 0, paused=True)
    _, answer = await video(fake_discord, discord_world, {"prompt": "a quiet lake"})
    assert "paused" in answer.content
    assert e2e_sim.requests == [] and await job_count(hailuo) == 0


async def test_over_a_spend_limit_is_refused_before_any_task_saying_which_limit_what_is_left_and_when(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    bot = await make_bot(limits={"member_day_usd": 0.5})
    w = discord_world
    _, first = await video(fake_discord, w, {"prompt": "first clip of the day"})
    assert "Job #1" in first.content
    _, answer = await video(fake_discord, w, {"prompt": "second clip of the day"})
    text = answer.content
    assert "daily" in text and "$0.22 left" in text and "$0.50" in text and "$0.28" in text, text
    assert "The limit resets <t:" in text and text.endswith(":R>."), text
    assert len(video_tasks(e2e_sim)) == 1
    assert await job_count(bot) == 1
    assert [row[1:] for row in await ledger(bot)] == [("held", 280_000, 0)]


async def test_runware_out_of_credits_fails_the_job_on_its_status_message_and_releases_the_reservation(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    _, answer = await video(fake_discord, w, {"prompt": "a comet over the desert"})
    assert "Job #1 did not start" in answer.content and "out of credits" in answer.content
    [status] = status_messages(fake_discord, w.channel)
    assert status.content.startswith("❌ Failed") and "out of credits" in status.content
    assert status.custom_ids() == ["hailuo:reroll:1", "hailuo:remix:1"], "no Cancel on a failed job; a retry"
    assert await ledger(hailuo) == [(1, "released", 280_000, 0)]
    job = await hailuo.engine.jobs.get(1)
    assert job is not None and job.state.value == "failed"
    assert_pings_only(fake_discord)


async def test_a_refused_last_frame_is_explained_and_the_reservation_released(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.faults.accept_last_frame = False
    first = fake_discord.add_attachment("a.png", png_bytes(color=(1, 2, 3)))
    last = fake_discord.add_attachment("b.png", png_bytes(color=(3, 2, 1)))
    _, answer = await video(fake_discord, w, {"prompt": "a door opening", "first_frame": first, "last_frame": last})
    assert "last frame" in answer.content and "without last_frame" in answer.content
    assert len(upload_tasks(e2e_sim)) == 2 and len(video_tasks(e2e_sim)) == 1
    [status] = status_messages(fake_discord, w.channel)
    assert status.content.startswith("❌ Failed") and "last frame" in status.content
    assert await ledger(hailuo) == [(1, "released", 280_000, 0)]
