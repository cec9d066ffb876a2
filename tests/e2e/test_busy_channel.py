"""One message per finished job (SPEC §4a): once its clips are posted, a job's status message is deleted."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import result_messages, status_messages, video, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld


async def test_five_members_jobs_leave_five_result_messages_and_no_status_messages(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    members = [fake_discord.add_member(w.guild, f"member{i}") for i in range(5)]
    for n, member in enumerate(members, start=1):
        await video(fake_discord, w, {"prompt": f"a busy street, take {n}"}, user=member)
    assert len(status_messages(fake_discord, w.channel)) == 5
    for task in video_tasks(e2e_sim):
        e2e_sim.finish(task["taskUUID"])
    await fake_discord.wait_until(
        lambda: len(result_messages(fake_discord, w.channel)) == 5 and not status_messages(fake_discord, w.channel),
        15,
        "five posts and no status",
    )
    visible = fake_discord.channel_messages(w.channel)
    assert len(visible) == 5 and visible == result_messages(fake_discord, w.channel)
    assert sorted(m.pinged_user_ids[0] for m in visible) == sorted(m.user.id for m in members)


async def test_a_failed_job_keeps_its_status_with_reroll_and_remix_beside_finished_ones(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    await video(fake_discord, w, {"prompt": "this one works"})
    e2e_sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await video(fake_discord, w, {"prompt": "this one fails"})
    for task in video_tasks(e2e_sim):
        e2e_sim.finish(task["taskUUID"])
    await fake_discord.wait_until(
        lambda: (
            len(status_messages(fake_discord, w.channel)) == 1
            and status_messages(fake_discord, w.channel)[0].content.startswith("❌ Failed")
        ),
        15,
        "the failed job's status",
    )
    [status] = status_messages(fake_discord, w.channel)
    assert "job #2" in status.content and status.custom_ids() == ["hailuo:reroll:2", "hailuo:remix:2"]
    assert len(result_messages(fake_discord, w.channel)) == 1
