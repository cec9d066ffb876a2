"""The status message: posted at once, edited as the job moves (throttled), with a Cancel button while it runs."""

from __future__ import annotations

from typing import Any

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    ledger,
    result_messages,
    status_messages,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord, FakeMessage, RecordedRequest
from tests.fakes.discord.world import DiscordWorld

EDIT = ("PATCH", "/channels/{channel_id}/messages/{message_id}")


def edits_of(fake: FakeDiscord, message: FakeMessage) -> list[RecordedRequest]:
    return [r for r in fake.requests_to(*EDIT) if r.path.endswith(f"/messages/{message.id}")]


def phase(body: dict[str, Any]) -> str:
    return str(body["content"]).split(" · ", 1)[0]


def custom_ids(body: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in body.get("components") or [] for c in row.get("components") or []]


async def test_status_message_moves_from_queued_to_generating_to_posting_and_goes_once_the_clip_is_posted(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    _, ack = await video(fake_discord, w, {"prompt": "lanterns rising over a river"})
    [status] = status_messages(fake_discord, w.channel)
    assert f"/{w.channel.id}/{status.id}" in ack.content, "the ephemeral answer links to the status message"
    [post] = [
        r
        for r in fake_discord.requests_to("POST", "/channels/{channel_id}/messages")
        if r.json and "job #1" in str(r.json.get("content"))
    ]
    assert phase(post.json) == "⏳ Queued" and custom_ids(post.json) == ["hailuo:cancel:1"]
    await fake_discord.wait_until(lambda: bool(edits_of(fake_discord, status)), what="a status edit")
    assert status.content.startswith("🎬 Generating") and status.custom_ids() == ["hailuo:cancel:1"]
    assert "Started <t:" in status.content

    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: status.deleted, what="the status deleted")  # one message per job: its clip
    phases = [phase(r.json) for r in edits_of(fake_discord, status)]
    assert phases[0] == "🎬 Generating" and phases[-1] == "📤 Posting"
    assert all(custom_ids(r.json) == ["hailuo:cancel:1"] for r in edits_of(fake_discord, status))
    assert len(result_messages(fake_discord, w.channel)) == 1 and status_messages(fake_discord, w.channel) == []
    assert_pings_only(fake_discord, w.member.user.id)


async def test_status_edits_wait_out_the_interval_and_only_the_newest_state_goes_out(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(delivery={"status_edit_interval": 3600}, runware={"poll_interval": 3600})
    await video(fake_discord, w, {"prompt": "a lighthouse blinking"})
    [status] = status_messages(fake_discord, w.channel)
    for _ in range(4):  # four poll rounds, each seeing the job still running: no edit within the interval
        await bot.engine.tracker.sweep_once()
    assert edits_of(fake_discord, status) == []
    e2e_sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await video(fake_discord, w, {"prompt": "a lighthouse that fails"})
    failing = status_messages(fake_discord, w.channel)[-1]
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    e2e_sim.finish(video_tasks(e2e_sim)[1]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    assert len(result_messages(fake_discord, w.channel)) == 1  # the clip itself is posted at once
    assert status.deleted and edits_of(fake_discord, status) == []  # its edits waiting in the interval: dropped
    assert edits_of(fake_discord, failing) == []  # generating, failed: still within the interval
    await bot.delivery.status.flush()  # what shutdown does; otherwise the timer sends it when the interval ends
    assert [phase(r.json) for r in edits_of(fake_discord, failing)] == ["❌ Failed"]  # coalesced: newest only
    assert custom_ids(edits_of(fake_discord, failing)[0].json) == ["hailuo:reroll:2", "hailuo:remix:2"]
    assert edits_of(fake_discord, status) == []


async def test_an_unchanged_status_is_not_edited_again(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """The running time is a Discord relative timestamp that counts by itself: poll rounds that bring no news
    (no new phase, no new progress) cost no edit, even with no throttle at all."""
    w = discord_world
    bot = await make_bot(delivery={"status_edit_interval": 0}, runware={"poll_interval": 3600})
    await video(fake_discord, w, {"prompt": "a lighthouse blinking"})
    [status] = status_messages(fake_discord, w.channel)
    for _ in range(3):
        await bot.engine.tracker.sweep_once()
    assert [phase(r.json) for r in edits_of(fake_discord, status)] == ["🎬 Generating"]


async def test_cancel_stops_posting_and_keeps_the_hold_until_runware_reports_the_cost(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(runware={"poll_interval": 3600})
    await video(fake_discord, w, {"prompt": "a snail racing a leaf"})
    [status] = status_messages(fake_discord, w.channel)

    carol = fake_discord.add_member(w.guild, "carol")
    refused = await fake_discord.click(status, "hailuo:cancel:1", user=carol)
    [no] = await refused.wait_followups(1)
    assert no.ephemeral and "Only the member who asked" in no.content
    assert status.custom_ids() == ["hailuo:cancel:1"]

    h = await fake_discord.click(status, "hailuo:cancel:1", user=w.member)
    await h.wait_deferred()
    [yes] = await h.wait_followups(1)
    assert yes.ephemeral and "Job #1 is cancelled" in yes.content
    assert status.content.startswith("🛑 Cancelled") and status.components == []
    assert await ledger(bot) == [(1, "held", 280_000, 0)]

    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    assert await ledger(bot) == [(1, "settled", 280_000, 280_000)]
    assert result_messages(fake_discord, w.channel) == []
    assert status.content.startswith("🛑 Cancelled")


async def test_cancel_while_the_submit_is_in_flight_stays_cancelled(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """The status message is up before the submit; a Cancel then must not be undone when Runware answers."""
    w = discord_world
    bot = await make_bot(runware={"request_timeout": 1.0, "poll_interval": 3600})
    e2e_sim.faults.accept_then_hang_next(1, seconds=30, task_type="videoInference")  # answered after a lookup
    h = await fake_discord.send_command("video", {"prompt": "a hesitant snail"}, user=w.member, channel=w.channel)
    status = await fake_discord.wait_for_message(w.channel, lambda m: "hailuo:cancel:1" in m.custom_ids())
    c = await fake_discord.click(status, "hailuo:cancel:1", user=w.member)
    [yes] = await c.wait_followups(1)
    assert "Job #1 is cancelled" in yes.content
    [ack] = await h.wait_followups(1, timeout=10)
    assert "cancelled" in ack.content and "on its way" not in ack.content
    assert status.content.startswith("🛑 Cancelled") and status.components == []
    job = await bot.engine.jobs.get(1)
    assert job is not None and job.state.value == "cancelled"
    assert await ledger(bot) == [(1, "held", 280_000, 0)], "Runware holds the task: the hold waits for its cost"
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    assert await ledger(bot) == [(1, "settled", 280_000, 280_000)]
    assert result_messages(fake_discord, w.channel) == []


async def test_a_failed_generation_is_shown_on_the_status_the_requester_is_pinged_and_the_hold_released(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await video(fake_discord, w, {"prompt": "@everyone an impossible shape"})
    [status] = status_messages(fake_discord, w.channel)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    note = await fake_discord.wait_for_message(w.channel, lambda m: "job #1 failed" in m.content, timeout=10)
    assert note.pinged_user_ids == [w.member.user.id] and note.message_reference is not None
    assert int(note.message_reference["message_id"]) == status.id
    assert status.content.startswith("❌ Failed")
    assert status.custom_ids() == ["hailuo:reroll:1", "hailuo:remix:1"]  # try again from the status itself
    assert await ledger(hailuo) == [(1, "released", 280_000, 0)]
    assert result_messages(fake_discord, w.channel) == []
    assert_pings_only(fake_discord, w.member.user.id)
    h = await fake_discord.click(status, "hailuo:reroll:1", user=w.member)
    [again] = await h.wait_followups(1)
    assert "Job #2" in again.content
    [task2] = video_tasks(e2e_sim)[1:]
    assert task2["positivePrompt"] == "@everyone an impossible shape"


async def test_a_late_progress_report_never_reopens_a_finished_status(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """A poll round that read 'processing' before the webhook finished the job must not bring back Cancel."""
    w = discord_world
    await video(fake_discord, w, {"prompt": "a kettle coming to the boil"})
    stale = await hailuo.engine.jobs.get(1)  # what a poll round in flight still holds: SUBMITTED
    assert stale is not None and stale.state.value == "submitted"
    [status] = status_messages(fake_discord, w.channel)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: status.deleted, 10, "the status deleted once the clip is posted")
    edits = len(edits_of(fake_discord, status))
    await hailuo.delivery.job_progress(stale, 50)
    await hailuo.delivery.job_submitted(stale)
    assert status.deleted and len(edits_of(fake_discord, status)) == edits
