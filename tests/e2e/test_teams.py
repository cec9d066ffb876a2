"""Teams end to end: a pool channel shares one budget; a thread per job holds its status, clips and follow-ups."""

from __future__ import annotations

from typing import Any

from bot.core.models import Payer
from bot.simulator.server import RunwareSimulator
from cogs.video._flow import thread_name
from tests.e2e.conftest import BotFactory
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.models import FakeChannel, FakeMember
from tests.fakes.discord.world import DiscordWorld


async def ask(fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel) -> str:
    h = await fake.send_command(name, options, user=user, channel=channel)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral, (name, answer.content)
    return answer.content


def video_tasks(sim: RunwareSimulator) -> list[dict[str, Any]]:
    return [t for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]


async def test_pool_channel_members_draw_from_one_budget_and_their_own_limits_are_untouched(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    pool = fake.add_channel(w.guild, "brainstorm")
    bob = fake.add_member(w.guild, "bob")
    bot = await make_bot()
    mod, alice = w.moderator, w.member
    await ask(fake, "videoadmin channel", {"channel": pool, "pool": True}, user=mod, channel=w.channel)
    await ask(fake, "limits set", {"period": "day", "amount": 0.56, "channel": pool}, user=mod, channel=w.channel)
    await ask(fake, "limits set", {"period": "day", "amount": 0, "member": alice}, user=mod, channel=w.channel)

    async def video(user: FakeMember, channel: FakeChannel) -> str:
        return await ask(fake, "video", {"prompt": "storyboard: a robot learns to paint"}, user=user, channel=channel)

    # Alice's own budget is blocked, yet the pool pays for her there.
    assert (await video(alice, w.channel)).startswith("Your daily limit is $0.00, so no jobs can be charged to it.")
    assert (await video(alice, pool)).startswith("Job #1 is on its way")
    assert (await video(bob, pool)).startswith("Job #2 is on its way")
    for member in (bob, alice):
        refused = await video(member, pool)
        assert refused.startswith(
            "This job would go over this channel's daily limit: $0.00 left of $0.56, and it needs $0.28."
        )

    usage = await ask(fake, "usage", {}, user=alice, channel=pool)
    assert usage.startswith(f"This channel is a team pool: jobs here are paid from <#{pool.id}>'s budget.")
    assert "**This channel's daily limit**: $0.00 spent + $0.56 reserved of $0.56 · **$0.00 left**" in usage
    usage = await ask(fake, "usage", {}, user=bob, channel=w.channel)
    assert usage.startswith("Your usage:")
    assert "**Your default daily limit**: $0.00 spent of $2.00 · **$2.00 left**" in usage
    usage = await ask(fake, "usage", {}, user=alice, channel=w.channel)
    assert "**Your daily limit**: $0.00, so it **blocks new jobs**" in usage
    # A moderator asking about a member in the pool channel sees that member's own limits, not the pool.
    usage = await ask(fake, "usage", {"member": alice}, user=w.moderator, channel=pool)
    assert usage.startswith(f"Usage of <@{alice.user.id}>:")
    assert "**Their daily limit**: $0.00, so it **blocks new jobs**" in usage

    for job_id, user in ((1, alice), (2, bob)):
        job = await bot.engine.jobs.get(job_id)
        assert job is not None
        assert (job.payer, job.pool_channel_id, job.budget_channel_id, job.user_id) == (
            Payer.POOL,
            pool.id,
            pool.id,
            user.user.id,
        )


async def test_a_thread_per_job_holds_its_status_clips_and_rerolls_and_remixes(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    ideas = fake.add_channel(w.guild, "ideas")
    bob = fake.add_member(w.guild, "bob")
    bot = await make_bot()
    mod, alice = w.moderator, w.member
    text = await ask(
        fake, "videoadmin channel", {"channel": ideas, "threads": True, "pool": True}, user=mod, channel=w.channel
    )
    assert "each job gets **its own thread**" in text

    prompt = "A #lighthouse keeper @here waves at a passing whale, golden hour, drone shot"
    ack = await ask(fake, "video", {"prompt": prompt, "variations": 3}, user=alice, channel=ideas)
    assert ack.startswith("Job #1 is on its way")

    def threads() -> list[FakeChannel]:
        return [c for c in fake.channels.values() if c.parent_id == ideas.id and c.is_thread]

    [thread] = threads()
    assert thread.name == thread_name(prompt) and "@" not in thread.name and "#" not in thread.name
    assert f"/channels/1000/{thread.id}/" in ack  # "Follow it here" points into the thread
    status = await fake.wait_for_message(thread, lambda m: "job #1" in m.content)
    assert "hailuo:cancel:1" in status.custom_ids()
    assert fake.channel_messages(ideas) == []  # nothing lands in the channel itself

    # Variations post together: one message with all three clips, side by side.
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    result = await fake.wait_for_message(thread, lambda m: bool(m.attachments), timeout=10)
    assert len(result.attachments) == 3 and all(a.data[4:8] == b"ftyp" for a in result.attachments)
    assert "**#1**" in result.content and "**#3**" in result.content
    assert fake.channel_messages(ideas) == []

    # Reroll from inside the thread (by a teammate): the new job lives in the same thread, paid by the pool.
    h = await fake.click(result, "hailuo:reroll:1", user=bob)
    [answer] = await h.wait_followups(1)
    assert answer.content.startswith("Job #2 is on its way"), answer.content
    await fake.wait_for_message(thread, lambda m: "job #2" in m.content)
    # Remix from inside the thread: same again with the edited prompt.
    h = await fake.click(result, "hailuo:remix:1", user=alice)
    await h.wait_modal()
    h2 = await fake.submit_modal(handle=h, values={"prompt": "The same whale, now at night under the aurora"})
    [answer] = await h2.wait_followups(1)
    assert answer.content.startswith("Job #3 is on its way"), answer.content
    await fake.wait_for_message(thread, lambda m: "job #3" in m.content)
    assert threads() == [thread]

    for job_id in (2, 3):
        job = await bot.engine.jobs.get(job_id)
        assert job is not None
        assert (job.thread_id, job.channel_id, job.budget_channel_id, job.payer) == (
            thread.id,
            thread.id,
            ideas.id,
            Payer.POOL,
        )
        assert job.parent_job_id == 1
    e2e_sim.finish(video_tasks(e2e_sim)[1]["taskUUID"])
    reroll = await fake.wait_for_message(thread, lambda m: "hailuo:delete:2" in m.custom_ids(), timeout=10)
    assert len(reroll.attachments) == 3 and f"<@{bob.user.id}>" in reroll.content
    assert fake.channel_messages(ideas) == []
