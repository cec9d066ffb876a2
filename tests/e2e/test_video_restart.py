"""Restarts: a job finished while the bot was down is posted once; buttons on old messages keep working."""

from __future__ import annotations

from typing import Any

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import (
    assert_pings_only,
    png_bytes,
    result_messages,
    results_after_delivery,
    status_messages,
    upload_tasks,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.models import iter_components
from tests.fakes.discord.world import DiscordWorld

SETTINGS: dict[str, Any] = {"limits": {"concurrent_per_member": 5}}


def text_input(modal: dict[str, Any], custom_id: str) -> dict[str, Any]:
    return next(c for c in iter_components(modal["components"]) if c.get("custom_id") == custom_id)


async def test_a_job_finished_while_the_bot_was_down_is_posted_once_after_the_restart(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    first = await make_bot()
    await video(fake_discord, w, {"prompt": "a fox in fresh snow"})
    [task] = video_tasks(e2e_sim)
    await first.close()
    e2e_sim.finish(task["taskUUID"])  # the result is ready while no bot is running

    second = await make_bot()
    msg = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    await results_after_delivery(second, 1)
    await second.engine.tracker.sweep_once()  # another round finds nothing left to post
    assert result_messages(fake_discord, w.channel) == [msg]
    await fake_discord.wait_until(lambda: not status_messages(fake_discord, w.channel), what="the status deleted")
    assert e2e_sim.submit_count() == 1, "never resubmitted"
    job = await second.engine.jobs.get(1)
    assert job is not None and job.state.value == "succeeded"


async def test_buttons_on_messages_from_before_a_restart_still_work(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    first = await make_bot(**SETTINGS)
    frame = fake_discord.add_attachment("start.png", png_bytes())
    await video(fake_discord, w, {"prompt": "a red balloon over rooftops", "first_frame": frame, "duration": 10})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    assert result.custom_ids() == ["hailuo:reroll:1", "hailuo:remix:1", "hailuo:extend:1", "hailuo:delete:1"]
    await results_after_delivery(first, 1)
    await video(fake_discord, w, {"prompt": "a slow sunrise"})  # job 2 stays running across the restart
    status2 = status_messages(fake_discord, w.channel)[-1]
    assert status2.custom_ids() == ["hailuo:cancel:2"]
    await first.close()

    second = await make_bot(**SETTINGS)

    # Cancel on the old status message.
    h = await fake_discord.click(status2, "hailuo:cancel:2", user=w.member)
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and "Job #2 is cancelled" in answer.content
    assert status2.content.startswith("🛑 Cancelled") and status2.components == []

    # Reroll: same parameters (the frame reused from Runware, not uploaded again), a new job and reservation.
    h = await fake_discord.click(result, "hailuo:reroll:1", user=w.member)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and "Job #3" in answer.content
    original, _, reroll = video_tasks(e2e_sim)
    for key in ("positivePrompt", "width", "height", "duration", "numberResults", "inputs", "providerSettings"):
        assert reroll[key] == original[key], key
    assert reroll["taskUUID"] != original["taskUUID"] and len(upload_tasks(e2e_sim)) == 1
    job3 = await second.engine.jobs.get(3)
    assert job3 is not None and job3.parent_job_id == 1 and job3.user_id == w.member.user.id

    # Remix: a modal prefilled with the prompt; submitting it starts a job with the edited prompt.
    h = await fake_discord.click(result, "hailuo:remix:1", user=w.member)
    modal = await h.wait_modal()
    assert text_input(modal, "prompt")["value"] == "a red balloon over rooftops"
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "a blue balloon over rooftops at night"})
    await sub.wait_deferred()
    [answer] = await sub.wait_followups(1)
    assert answer.ephemeral and "Job #4" in answer.content
    remix = video_tasks(e2e_sim)[-1]
    assert remix["positivePrompt"] == "a blue balloon over rooftops at night"
    assert remix["duration"] == 10 and remix["inputs"] == original["inputs"]

    # Delete: refused for another plain member, done for the requester.
    carol = fake_discord.add_member(w.guild, "carol")
    h = await fake_discord.click(result, "hailuo:delete:1", user=carol)
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and "Only the member who asked for this clip, or a moderator" in answer.content
    assert not result.deleted
    h = await fake_discord.click(result, "hailuo:delete:1", user=w.member)
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and "Deleted 1 message of job #1" in answer.content
    assert result.deleted
    assert_pings_only(fake_discord, w.member.user.id)


async def test_a_moderator_may_delete_someone_elses_clip(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    await video(fake_discord, w, {"prompt": "a moth near a lamp"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    h = await fake_discord.click(result, "hailuo:delete:1", user=w.moderator)
    [answer] = await h.wait_followups(1)
    assert "Deleted 1 message" in answer.content and result.deleted


async def test_a_remix_modal_opened_before_a_restart_can_be_submitted_after_it(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    first = await make_bot()
    await video(fake_discord, w, {"prompt": "a heron in the reeds"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
    await results_after_delivery(first, 1)
    h = await fake_discord.click(result, "hailuo:remix:1", user=w.member)
    await h.wait_modal()
    await first.close()  # the member is still typing

    await make_bot()
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "a heron in the reeds, in the rain"})
    await sub.wait_deferred()
    [answer] = await sub.wait_followups(1)
    assert "Job #2" in answer.content
    assert video_tasks(e2e_sim)[-1]["positivePrompt"] == "a heron in the reeds, in the rain"
