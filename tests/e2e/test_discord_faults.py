"""Discord's own faults mid-job (SPEC §8): 429s, 5xx on posts, uploads, edits and followups, and gateway drops.

Each test plans a fault in the loopback Discord, runs a real /video job through the simulator, and checks that the
fault was served, every clip was posted exactly once, the job is delivered in SQLite and its reservation settled.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.models import ResultState
from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import LoopbackBot
from tests.e2e.video_support import (
    bot_messages,
    ledger,
    result_messages,
    results_after_delivery,
    status_messages,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord, FakeMessage, RecordedRequest
from tests.fakes.discord.world import DiscordWorld

MESSAGES = r"/channels/\d+/messages"
MESSAGE = r"/channels/\d+/messages/\d+"
FOLLOWUP = r"/webhooks/\d+/[^/]+"
CLIP_POSTS = ("POST", "/channels/{channel_id}/messages")


def is_clip_post(rec: RecordedRequest) -> bool:
    """The post of a job's clips: it carries the delivery nonce (hl<job>c<first clip>)."""
    return isinstance(rec.json, dict) and str(rec.json.get("nonce") or "").startswith("hl")


def is_upload(rec: RecordedRequest) -> bool:
    """A clip post with the clip attached (multipart)."""
    return is_clip_post(rec) and bool(rec.files)


def is_status_post(rec: RecordedRequest) -> bool:
    """The post of a job's status message (it starts queued)."""
    return isinstance(rec.json, dict) and str(rec.json.get("content") or "").startswith("⏳ Queued")


def clip_posts(fake: FakeDiscord) -> list[RecordedRequest]:
    return [r for r in fake.requests_to(*CLIP_POSTS) if is_clip_post(r)]


async def finish_and_wait_for_clip(
    fake: FakeDiscord, w: DiscordWorld, sim: RunwareSimulator, job_id: int, task: dict[str, Any]
) -> FakeMessage:
    sim.finish(task["taskUUID"])
    return await fake.wait_for_message(w.channel, lambda m: f"hailuo:delete:{job_id}" in m.custom_ids(), timeout=15)


async def assert_posted_once(
    bot: LoopbackBot, fake: FakeDiscord, w: DiscordWorld, job_id: int, *, clips: int = 1
) -> FakeMessage:
    """The job's clips are in exactly one message each (counted in the channel), delivered in SQLite, settled."""
    posts = [m for m in result_messages(fake, w.channel) if f"hailuo:delete:{job_id}" in m.custom_ids()]
    assert len(posts) == 1, [m.content for m in posts]
    [post] = posts
    assert len(post.attachments) == clips and all(a.data[4:8] == b"ftyp" for a in post.attachments)
    results = await results_after_delivery(bot, job_id)
    assert len(results) == clips
    assert all(r.state is ResultState.DELIVERED and r.message_id == post.id for r in results), results
    rows = [row for row in await ledger(bot) if row[0] == job_id]
    assert [row[1] for row in rows] == ["settled"], rows

    def shown() -> list[FakeMessage]:
        return [m for m in status_messages(fake, w.channel) if f"job #{job_id} " in m.content.split("\n", 1)[0]]

    # Its clips posted, the job's status message goes: one message per finished job.
    await fake.wait_until(lambda: not shown(), timeout=15, what=f"job {job_id}'s status deleted")
    assert fake.violations == []
    return post


# -- 429 ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["user", "shared"])
async def test_a_per_route_429_on_the_clip_post_is_waited_out_and_the_clip_posted_once(
    scope: str,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a heron taking off"})
    fault = fake_discord.faults.add(
        method="POST", path_regex=MESSAGES, status=429, retry_after=0.3, scope=scope, when=is_clip_post
    )
    post = await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    [served] = fake_discord.faults.served_for(fault)
    assert served.request.status == 429 and served.request.response["retry_after"] == 0.3
    assert served.request.response["global"] is False
    assert [r.status for r in clip_posts(fake_discord)] == [429, 200]
    assert post.nonce == "hl1c1"
    await assert_posted_once(hailuo, fake_discord, w, 1)


async def test_a_global_429_on_the_clip_post_is_waited_out_and_the_clip_posted_once(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a heron taking off", "variations": 2})
    fault = fake_discord.faults.add(
        method="POST", path_regex=MESSAGES, status=429, retry_after=0.3, global_=True, when=is_clip_post
    )
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    [served] = fake_discord.faults.served_for(fault)
    assert served.request.response["global"] is True
    assert [r.status for r in clip_posts(fake_discord)] == [429, 200]
    await assert_posted_once(hailuo, fake_discord, w, 1, clips=2)


# -- 5xx ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_on_the_upload_is_retried_and_the_clip_posted_once(
    status: int,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    """500/502: discord.py sends again after 1 s; 503: discord.py gives up at once and the bot tries again."""
    w = discord_world
    await video(fake_discord, w, {"prompt": "rain on a tin roof"})
    fault = fake_discord.faults.add(method="POST", path_regex=MESSAGES, status=status, when=is_upload)
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    assert len(fake_discord.faults.served_for(fault)) == 1
    assert [r.status for r in clip_posts(fake_discord)] == [status, 200]
    assert all(r.files for r in clip_posts(fake_discord)), "the retry uploads the clip again"
    await assert_posted_once(hailuo, fake_discord, w, 1)


@pytest.mark.parametrize("status", [500, 503])
async def test_a_clip_post_that_took_effect_before_a_5xx_is_not_posted_twice(
    status: int,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    """Discord created the message and then answered 5xx: the retry carries the same nonce and gets it back."""
    w = discord_world
    await video(fake_discord, w, {"prompt": "a paper boat in a gutter"})
    fault = fake_discord.faults.add(method="POST", path_regex=MESSAGES, status=status, apply=True, when=is_clip_post)
    post = await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    [served] = fake_discord.faults.served_for(fault)
    assert served.applied and served.request.status == status
    await assert_posted_once(hailuo, fake_discord, w, 1)
    results = await results_after_delivery(hailuo, 1)
    assert results[0].message_id == post.id
    # 500: discord.py's own retry, answered with the earlier message by its nonce. 503: the bot's next try, which first
    # finds the message in the channel history and so does not post at all.
    assert [r.status for r in clip_posts(fake_discord)] == ([500, 200] if status == 500 else [503])


@pytest.mark.parametrize(("status", "apply"), [(503, False), (503, True), (500, True)])
async def test_a_5xx_on_the_status_post_is_retried_and_the_job_has_one_status_message(
    status: int,
    apply: bool,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    w = discord_world
    fault = fake_discord.faults.add(method="POST", path_regex=MESSAGES, status=status, apply=apply, when=is_status_post)
    _, answer = await video(fake_discord, w, {"prompt": "a lantern on a pier"})
    assert len(fake_discord.faults.served_for(fault)) == 1
    [status_msg] = status_messages(fake_discord, w.channel)
    assert f"/{w.channel.id}/{status_msg.id}" in answer.content, "the member is told where to follow the job"
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    await assert_posted_once(hailuo, fake_discord, w, 1)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_429_or_5xx_on_the_status_delete_is_retried_and_the_status_goes(
    status: int,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a clock tower at dusk"})
    [status_msg] = status_messages(fake_discord, w.channel)
    fault = fake_discord.faults.add(method="DELETE", path_regex=MESSAGE, status=status)
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    await assert_posted_once(hailuo, fake_discord, w, 1)
    assert len(fake_discord.faults.served_for(fault)) == 1
    deletes = fake_discord.requests_to("DELETE", "/channels/{channel_id}/messages/{message_id}")
    assert [r.status for r in deletes if r.path.endswith(f"/{status_msg.id}")] == [status, 204]
    assert status_msg.deleted


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_429_or_5xx_on_the_interaction_followup_is_retried_and_the_member_told_once(
    status: int,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    w = discord_world
    fault = fake_discord.faults.add(method="POST", path_regex=FOLLOWUP, status=status)
    h, answer = await video(fake_discord, w, {"prompt": "a fox in fresh snow"})
    assert len(fake_discord.faults.served_for(fault)) == 1
    assert "Job #1 is on its way" in answer.content and len(h.followups) == 1
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, video_tasks(e2e_sim)[0])
    await assert_posted_once(hailuo, fake_discord, w, 1)


# -- the gateway -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close 4000", "dropped socket"])
async def test_a_gateway_drop_mid_job_resumes_and_replays_what_was_missed(
    how: str,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    """While the bot is away, job 1 finishes (posted over REST) and a member runs /video: it arrives on RESUME."""
    w = discord_world
    await video(fake_discord, w, {"prompt": "a kingfisher diving"})
    [task1] = video_tasks(e2e_sim)
    session = fake_discord.session
    assert session is not None
    fake_discord.hold_gateway()
    if how == "close 4000":
        await fake_discord.disconnect(4000)
    else:
        fake_discord.drop()
    await fake_discord.wait_until(lambda: fake_discord.gateway_waiting > 0, what="the bot to try to reconnect")
    assert not fake_discord.connected
    h2 = await fake_discord.send_command("video", {"prompt": "a moth at a lamp"}, user=w.member, channel=w.channel)
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, task1)
    assert h2.callback_type is None, "the bot cannot have seen the second /video yet"
    fake_discord.release_gateway()
    await fake_discord.wait_until(lambda: fake_discord.connected and session.resumes == 1, what="a RESUME")
    assert fake_discord.identify_count == 1 and session.replayed, "resumed, with the missed events replayed"
    await h2.wait_deferred()
    [answer] = await h2.wait_followups(1)
    assert "Job #2 is on its way" in answer.content
    [_, task2] = video_tasks(e2e_sim)
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 2, task2)
    await assert_posted_once(hailuo, fake_discord, w, 1)
    await assert_posted_once(hailuo, fake_discord, w, 2)
    assert len(clip_posts(fake_discord)) == 2


@pytest.mark.parametrize("how", ["op 9", "close 4009"])
async def test_an_invalidated_session_mid_job_identifies_again_and_the_job_posts_once(
    how: str,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    w = discord_world
    await video(fake_discord, w, {"prompt": "a glacier calving", "variations": 2})
    [task1] = video_tasks(e2e_sim)
    old = fake_discord.session
    assert old is not None
    fake_discord.hold_gateway()
    if how == "op 9":
        await fake_discord.invalidate_session()
    else:
        await fake_discord.disconnect(4009)  # discord.py tries to RESUME and is told INVALID_SESSION
    await fake_discord.wait_until(lambda: fake_discord.gateway_waiting > 0, what="the bot to try to reconnect")
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 1, task1)
    fake_discord.release_gateway()
    await fake_discord.wait_until(
        lambda: fake_discord.identify_count == 2 and fake_discord.connected, what="a fresh IDENTIFY"
    )
    assert old.invalid and old.resumes == 0 and fake_discord.session is not old
    await fake_discord.wait_until(lambda: hailuo.get_guild(w.guild.id) is not None, what="the guild again")
    await assert_posted_once(hailuo, fake_discord, w, 1, clips=2)
    # The bot is whole again: a new job runs end to end on the new session.
    await video(fake_discord, w, {"prompt": "a seal on an ice floe"})
    await finish_and_wait_for_clip(fake_discord, w, e2e_sim, 2, video_tasks(e2e_sim)[1])
    await assert_posted_once(hailuo, fake_discord, w, 2)
    assert len(clip_posts(fake_discord)) == 2


def is_failure_notice(rec: RecordedRequest) -> bool:
    return isinstance(rec.json, dict) and "job #1 failed" in str(rec.json.get("content") or "")


@pytest.mark.parametrize("apply", [False, True])
async def test_a_5xx_on_the_failure_notice_is_retried_and_the_requester_told_once(
    apply: bool,
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
) -> None:
    """The ping that a job failed is tried again after a 503 (discord.py does not retry one); when Discord had made
    the message before failing, the retry's nonce gets it back instead of a second ping."""
    w = discord_world
    e2e_sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await video(fake_discord, w, {"prompt": "an impossible shape"})
    fault = fake_discord.faults.add(method="POST", path_regex=MESSAGES, status=503, apply=apply, when=is_failure_notice)
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    # The retry, about a second after the 503 (the message may already be there when Discord made it first).
    await fake_discord.wait_for(lambda r: is_failure_notice(r) and r.status == 200, timeout=15)
    note = await fake_discord.wait_for_message(w.channel, lambda m: "job #1 failed" in m.content, timeout=15)
    assert len(fake_discord.faults.served_for(fault)) == 1
    notices = [m for m in bot_messages(fake_discord) if "job #1 failed" in m.content]
    assert notices == [note] and note.pinged_user_ids == [w.member.user.id]
    posts = [r for r in fake_discord.requests_to(*CLIP_POSTS) if is_failure_notice(r)]
    assert [r.status for r in posts] == [503, 200]
