"""/video with frames, resolution, duration and variations: what reaches Runware and what comes back."""

from __future__ import annotations

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    png_bytes,
    result_messages,
    results_after_delivery,
    upload_tasks,
    video,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld


async def test_two_frames_768p_10s_two_variations_sends_uploaded_frames_and_posts_two_clips(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    first = fake_discord.add_attachment("start.png", png_bytes(color=(10, 200, 10)))
    last = fake_discord.add_attachment("end.png", png_bytes(color=(10, 10, 200)))
    _, ack = await video(
        fake_discord,
        w,
        {
            "prompt": "a paper boat drifting down a rainy street",
            "first_frame": first,
            "last_frame": last,
            "resolution": "768p",
            "duration": 10,
            "variations": 2,
        },
    )
    assert "Job #1" in ack.content and "2 × 768p, 10 s" in ack.content
    [task] = video_tasks(e2e_sim)
    assert (task["width"], task["height"], task["duration"], task["fps"]) == (1366, 768, 10, 25)
    assert task["numberResults"] == 2 and task["deliveryMethod"] == "async" and task["includeCost"] is True
    assert task["providerSettings"] == {"minimax": {"promptOptimizer": False}}
    frames = task["inputs"]["frameImages"]
    assert [f["frame"] for f in frames] == ["first", "last"]
    # The frames went up as data URIs (imageUpload) and the task names the returned UUIDs: no Discord CDN link.
    uploads = upload_tasks(e2e_sim)
    assert len(uploads) == 2 and all(u["image"].startswith("data:image/png;base64,") for u in uploads)
    assert [f["image"] for f in frames] == list(e2e_sim.images)
    assert e2e_sim.images[frames[0]["image"]][0] == first.data
    assert e2e_sim.images[frames[1]["image"]][0] == last.data
    assert fake_discord.base_url not in repr([r.tasks for r in e2e_sim.requests])

    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: len(m.attachments) == 2, timeout=10)
    assert [a.data[4:8] for a in msg.attachments] == [b"ftyp", b"ftyp"]
    assert "**#1**" in msg.content and "**#2**" in msg.content
    assert msg.content.count("768p · 10 s") == 2 and msg.content.count("$0.56") >= 2
    assert "Total: $1.12" in msg.content
    assert len(result_messages(fake_discord, w.channel)) == 1
    assert_pings_only(fake_discord, w.member.user.id)
    job = await hailuo.engine.jobs.get(1)
    assert job is not None and job.state.value == "succeeded" and job.frame_count == 2
    assert job.cost_micros == 1_120_000


async def test_twelve_variations_are_posted_in_messages_of_at_most_ten(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(limits={"member_day_usd": 100.0, "member_month_usd": 100.0})
    await bot.engine.guilds.update(1000, 0, variations_cap=12)
    _, ack = await video(fake_discord, w, {"prompt": "twelve tiny dragons", "variations": 12})
    assert "Job #1" in ack.content
    [task] = video_tasks(e2e_sim)
    assert task["numberResults"] == 12
    e2e_sim.finish(task["taskUUID"])
    await fake_discord.wait_until(
        lambda: sum(len(m.attachments) for m in result_messages(fake_discord, w.channel)) == 12,
        timeout=10,
        what="twelve clips",
    )
    posts = result_messages(fake_discord, w.channel)
    assert [len(m.attachments) for m in posts] == [10, 2]
    assert "(clips 1–10 of 12)" in posts[0].content and "(clips 11–12 of 12)" in posts[1].content
    assert "Total: $3.36" in posts[1].content and "Total" not in posts[0].content
    numbers = [f"**#{n}**" for n in range(1, 13)]
    assert all(n in posts[0].content for n in numbers[:10]) and all(n in posts[1].content for n in numbers[10:])
    assert posts[0].nonce != posts[1].nonce
    assert_pings_only(fake_discord, w.member.user.id)
    results = await results_after_delivery(bot, 1)
    assert len(results) == 12 and {r.state.value for r in results} == {"delivered"}
    assert {r.message_id for r in results} == {posts[0].id, posts[1].id}


async def test_server_defaults_fill_omitted_options(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    await hailuo.engine.guilds.update(1000, 0, default_resolution="1080p", prompt_optimizer=True)
    await video(fake_discord, discord_world, {"prompt": "fog over a harbour at dawn"})
    [task] = video_tasks(e2e_sim)
    assert (task["width"], task["height"], task["duration"], task["numberResults"]) == (1920, 1080, 6, 1)
    assert task["providerSettings"] == {"minimax": {"promptOptimizer": True}}
    assert "inputs" not in task


async def test_the_registered_commands_carry_the_options_of_the_spec(
    hailuo: LoopbackBot, fake_discord: FakeDiscord
) -> None:
    commands = {c["name"]: c for c in fake_discord.commands[1000]}
    video_cmd = commands["video"]
    options = {o["name"]: o for o in video_cmd["options"]}
    assert list(options) == [
        "prompt",
        "first_frame",
        "last_frame",
        "resolution",
        "duration",
        "variations",
        "prompt_optimizer",
    ]
    kinds = {name: o["type"] for name, o in options.items()}
    assert kinds == {
        "prompt": 3,
        "first_frame": 11,
        "last_frame": 11,
        "resolution": 3,
        "duration": 4,
        "variations": 4,
        "prompt_optimizer": 5,
    }
    assert [name for name, o in options.items() if o.get("required")] == ["prompt"]
    assert [c["value"] for c in options["resolution"]["choices"]] == ["768p", "1080p"]
    assert [c["value"] for c in options["duration"]["choices"]] == [6, 10]
    assert (options["variations"]["min_value"], options["variations"]["max_value"]) == (1, 20)
    assert [o["name"] for o in commands["usage"].get("options", [])] == ["member"]
    assert commands["jobs"].get("options", []) == []
