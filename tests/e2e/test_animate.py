"""Animate image (SPEC §4a): the Apps-menu command on a member's message, end to end."""

from __future__ import annotations

import base64

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import png_bytes, upload_tasks, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.message_commands import post_as, send_message_command
from tests.fakes.discord.world import DiscordWorld


async def test_animate_image_turns_a_posted_image_into_the_first_frame_of_a_job_in_that_channel(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    carol = fake_discord.add_member(w.guild, "carol")
    image = png_bytes(800, 450, (10, 120, 200))
    posted = await post_as(fake_discord, carol, w.channel, "my drawing", [("notes.txt", b"hi"), ("cat.png", image)])

    h = await send_message_command(fake_discord, "Animate image", posted, user=w.member)
    modal = await h.wait_modal()
    assert modal["title"] == "Animate image"
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "the cat starts to dance"})
    await sub.wait_deferred()
    [answer] = await sub.wait_followups(1)
    assert answer.ephemeral and "Job #1 is on its way" in answer.content

    [upload] = upload_tasks(e2e_sim)
    sent = upload["image"]
    raw = base64.b64decode(sent.split(",", 1)[1]) if sent.startswith("data:") else base64.b64decode(sent)
    assert raw == image, "the message's image, byte for byte"
    [task] = video_tasks(e2e_sim)
    assert task["positivePrompt"] == "the cat starts to dance"
    assert [f["frame"] for f in task["inputs"]["frameImages"]] == ["first"]
    assert (task["width"], task["height"], task["duration"]) == (1366, 768, 6)  # the server's defaults
    e2e_sim.finish(task["taskUUID"])
    msg = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments) and m.author.bot, timeout=10)
    assert f"<@{w.member.user.id}>" in msg.content


async def test_animate_image_on_a_message_without_an_image_says_so_and_starts_nothing(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    await make_bot()
    posted = await post_as(fake_discord, w.member, w.channel, "just words", [("notes.txt", b"not an image")])
    h = await send_message_command(fake_discord, "Animate image", posted, user=w.member)
    await h.wait_response()
    assert h.original is not None and h.original.ephemeral
    assert h.original.content == "That message has no image to animate."
    assert video_tasks(e2e_sim) == [] and upload_tasks(e2e_sim) == []


async def test_an_animate_modal_opened_before_a_restart_can_be_submitted_after_it(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    first = await make_bot()
    posted = await post_as(fake_discord, w.member, w.channel, "", [("sky.webp", _webp())])
    h = await send_message_command(fake_discord, "Animate image", posted, user=w.member)
    await h.wait_modal()
    await first.close()
    await make_bot()
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "clouds drift by"})
    [answer] = await sub.wait_followups(1)
    assert "Job #1" in answer.content
    assert video_tasks(e2e_sim)[-1]["positivePrompt"] == "clouds drift by"


def _webp() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 360), (90, 140, 220)).save(buf, format="WEBP")
    return buf.getvalue()
