"""/jobs and /usage for the member themselves, and the one error path for anything unexpected."""

from __future__ import annotations

import logging
import re

import pytest

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import LoopbackBot
from tests.e2e.video_support import result_messages, results_after_delivery, video, video_tasks
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.discord.world import DiscordWorld


async def ask(fake: FakeDiscord, world: DiscordWorld, name: str, **options: object) -> FakeMessage:
    h = await fake.send_command(name, options, user=world.member, channel=world.channel)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral
    return answer


async def test_jobs_lists_the_members_jobs_with_status_cost_and_a_link(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    assert "no video jobs" in (await ask(fake_discord, w, "jobs")).content
    await video(fake_discord, w, {"prompt": "a whale breaching at sunset"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: bool(result_messages(fake_discord, w.channel)), timeout=10)
    [post] = result_messages(fake_discord, w.channel)
    await results_after_delivery(hailuo, 1)
    e2e_sim.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    await video(fake_discord, w, {"prompt": "a refused idea"})
    await video(fake_discord, w, {"prompt": "a clip still running", "variations": 2})

    text = (await ask(fake_discord, w, "jobs")).content
    lines = text.split("\n")
    assert lines[0] == "Your recent video jobs:"
    job3, job2, job1 = text.split("**#")[1:]  # newest first
    assert job1.startswith("1**") and " done " in job1 and "$0.28" in job1
    assert f"/{w.channel.id}/{post.id}" in job1, "links to the posted clip"
    assert "a whale breaching at sunset" in job1
    assert job2.startswith("2**") and "failed" in job2 and "not charged" in job2
    assert job3.startswith("3**") and " generating " in job3 and "~$0.56 reserved" in job3
    # Someone else's /jobs does not show alice's jobs.
    h = await fake_discord.send_command("jobs", {}, user=w.moderator, channel=w.channel)
    [theirs] = await h.wait_followups(1)
    assert "no video jobs" in theirs.content


async def test_usage_shows_spent_reserved_and_left_against_each_limit(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a whale breaching at sunset"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: bool(result_messages(fake_discord, w.channel)), timeout=10)
    await results_after_delivery(hailuo, 1)
    await video(fake_discord, w, {"prompt": "a clip still running", "variations": 2})

    text = (await ask(fake_discord, w, "usage")).content
    assert text.startswith("Your usage:")
    daily = next(line for line in text.split("\n") if "daily" in line)
    assert "$0.28 spent + $0.56 reserved of $2.00" in daily and "$1.16 left" in daily and "resets <t:" in daily
    monthly = next(line for line in text.split("\n") if "monthly" in line and "server" not in line)
    assert "$0.28 spent + $0.56 reserved of $20.00" in monthly and "$19.16 left" in monthly
    assert any("server" in line and "$200.00" in line for line in text.split("\n"))

    other = fake_discord.add_member(w.guild, "carol")
    h = await fake_discord.send_command("usage", {"member": w.moderator}, user=other, channel=w.channel)
    [refused] = await h.wait_followups(1)
    assert refused.ephemeral and "Only moderators" in refused.content


async def test_an_unexpected_error_is_one_generic_line_with_an_error_id_and_the_detail_is_logged(
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await hailuo.engine.db.execute("ALTER TABLE jobs RENAME TO jobs_gone")  # a real fault deep in the core
    with caplog.at_level(logging.ERROR, logger="bot.ui.tree"):
        answer = await ask(fake_discord, discord_world, "jobs")
    m = re.fullmatch(r"Something went wrong on the bot's side \(error id ([0-9a-f]{8})\)\. .*", answer.content)
    assert m is not None, answer.content
    assert "Traceback" not in answer.content and "no such table" not in answer.content
    [record] = [r for r in caplog.records if m.group(1) in r.getMessage()]
    assert record.exc_info is not None and "no such table" in str(record.exc_info[1])
    await hailuo.engine.db.execute("ALTER TABLE jobs_gone RENAME TO jobs")
