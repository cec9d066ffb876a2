"""Extend (SPEC §4a): a result's clip continues from its LAST frame; the post carries both clips joined."""

from __future__ import annotations

import base64
import io
from typing import Any

import av
from PIL import Image, ImageChops, ImageStat

from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import upload_tasks, video, video_tasks
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.discord.models import iter_components
from tests.fakes.discord.world import DiscordWorld

SIZE_768P = (1366, 768)


def frames_of(clip: bytes) -> list[Image.Image]:
    with av.open(io.BytesIO(clip)) as c:
        return [f.to_image().convert("RGB") for f in c.decode(c.streams.video[0])]


def plays_for(clip: bytes) -> float:
    """Seconds the clip plays, read back with PyAV: frames over the stream's frame rate, and the container's say."""
    with av.open(io.BytesIO(clip)) as c:
        stream = c.streams.video[0]
        count = sum(1 for _ in c.decode(stream))
        assert stream.average_rate is not None
        by_frames = count / float(stream.average_rate)
        assert c.duration is not None
        assert abs(c.duration / av.time_base - by_frames) < 0.1
        return by_frames


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0 = the same picture)."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def sent_frame(sim: RunwareSimulator, index: int = -1) -> Image.Image:
    image = upload_tasks(sim)[index]["image"]
    raw = base64.b64decode(image.split(",", 1)[1] if image.startswith("data:") else image)
    return Image.open(io.BytesIO(raw)).convert("RGB")


def assert_is_last_frame(sent: Image.Image, clip: bytes) -> None:
    frames = frames_of(clip)
    assert sent.size == SIZE_768P, "scaled to the job's output size"
    # The first frame of the clip's last 6 s (its first frame, for a 6 s clip): each simulated clip turns its colour
    # by a third of the wheel from its first frame to its last, so these always differ.
    first, last = (f.resize(SIZE_768P) for f in (frames[max(0, len(frames) - 150)], frames[-1]))
    assert difference(first, last) > 20, "the simulator's clips change colour over time"
    assert difference(sent, last) < 3 < difference(sent, first), "the LAST frame was sent, not the first"


def attachment(msg: FakeMessage, name: str) -> bytes:
    return next(a.data for a in msg.attachments if a.filename == name)


def modal_fields(modal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["custom_id"]: c for c in iter_components(modal["components"]) if c.get("type") == 4}


async def result_of(fake: FakeDiscord, w: DiscordWorld, job_id: int) -> FakeMessage:
    return await fake.wait_for_message(
        w.channel, lambda m: f"hailuo:extend:{job_id}" in m.custom_ids() and bool(m.attachments), timeout=15
    )


async def extend(
    fake: FakeDiscord, w: DiscordWorld, msg: FakeMessage, job_id: int, values: dict[str, str]
) -> tuple[dict[str, Any], FakeMessage]:
    h = await fake.click(msg, f"hailuo:extend:{job_id}", user=w.member)
    modal = await h.wait_modal()
    sub = await fake.submit_modal(handle=h, values=values)
    await sub.wait_deferred()
    [answer] = await sub.wait_followups(1)
    assert answer.ephemeral
    return modal, answer


async def test_extend_continues_a_single_clip_from_its_last_frame_and_posts_both_joined(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.varied_clips = True
    bot = await make_bot()
    await video(fake_discord, w, {"prompt": "a train leaves the station"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    first = await result_of(fake_discord, w, 1)
    clip1 = attachment(first, "hailuo-1-1.mp4")

    modal, answer = await extend(fake_discord, w, first, 1, {"prompt": "the train crosses a bridge"})
    assert set(modal_fields(modal)) == {"prompt"}, "one clip: no clip field"
    assert modal_fields(modal)["prompt"]["value"] == "a train leaves the station"
    assert "Job #2 is on its way" in answer.content
    assert_is_last_frame(sent_frame(e2e_sim), clip1)
    original, continuation = video_tasks(e2e_sim)
    for key in ("width", "height", "duration", "numberResults"):
        assert continuation[key] == original[key], key
    assert continuation["positivePrompt"] == "the train crosses a bridge"
    assert [f["frame"] for f in continuation["inputs"]["frameImages"]] == ["first"]
    job2 = await bot.engine.jobs.get(2)
    assert job2 is not None and job2.parent_job_id == 1 and job2.estimate_micros == 280_000  # charged anew

    e2e_sim.finish(continuation["taskUUID"])
    second = await result_of(fake_discord, w, 2)
    assert sorted(a.filename for a in second.attachments) == ["hailuo-2-1-extended.mp4", "hailuo-2-1.mp4"]
    clip2 = attachment(second, "hailuo-2-1.mp4")
    joined = attachment(second, "hailuo-2-1-extended.mp4")
    assert abs(plays_for(joined) - (plays_for(clip1) + plays_for(clip2))) < 0.05
    assert abs(plays_for(joined) - 12.0) < 0.05
    assert "Continues clip 1 of job #1" in second.content

    # Extending the extension continues the joined clip's end, and joins onto all of it.
    _, answer = await extend(fake_discord, w, second, 2, {"prompt": "the train reaches the sea"})
    assert "Job #3 is on its way" in answer.content
    assert_is_last_frame(sent_frame(e2e_sim), joined)
    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    third = await result_of(fake_discord, w, 3)
    assert abs(plays_for(attachment(third, "hailuo-3-1-extended.mp4")) - 18.0) < 0.05


async def test_extend_on_a_four_clip_message_asks_which_clip_and_takes_that_clips_last_frame(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.varied_clips = True
    await make_bot()
    await video(fake_discord, w, {"prompt": "four paper lanterns rise", "variations": 4})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    post = await fake_discord.wait_for_message(w.channel, lambda m: len(m.attachments) == 4, timeout=15)

    modal, answer = await extend(fake_discord, w, post, 1, {"prompt": "lantern three drifts away", "clip": "3"})
    fields = modal_fields(modal)
    assert set(fields) == {"prompt", "clip"} and "1–4" in fields["clip"]["label"]
    assert "Job #2 is on its way" in answer.content
    clip3 = attachment(post, "hailuo-1-3.mp4")
    assert_is_last_frame(sent_frame(e2e_sim), clip3)
    last_of_1 = frames_of(attachment(post, "hailuo-1-1.mp4"))[-1].resize(SIZE_768P)
    assert difference(sent_frame(e2e_sim), last_of_1) > 3, "clip 3's frame, not clip 1's"
    assert video_tasks(e2e_sim)[-1]["numberResults"] == 1

    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    second = await result_of(fake_discord, w, 2)
    joined = attachment(second, "hailuo-2-1-extended.mp4")
    assert abs(plays_for(joined) - 12.0) < 0.05
    assert difference(frames_of(joined)[0], frames_of(clip3)[0]) < 3, "the joined clip starts with clip 3"

    _, answer = await extend(fake_discord, w, post, 1, {"prompt": "x" * 5, "clip": "7"})
    assert answer.content == "Choose a clip number from 1 to 4: this message holds 4 clips."


async def test_extending_a_clip_whose_link_expired_says_so_plainly_and_reserves_nothing(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(runware={"ttl": 3600})
    await video(fake_discord, w, {"prompt": "a bee in a foxglove"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    post = await result_of(fake_discord, w, 1)
    e2e_sim.advance(7200)  # Runware's link has expired
    _, answer = await extend(fake_discord, w, post, 1, {"prompt": "the bee flies off"})
    assert answer.content.startswith("That clip is no longer available")
    assert len(video_tasks(e2e_sim)) == 1 and upload_tasks(e2e_sim) == []
    row = await bot.engine.db.fetchone("SELECT COUNT(*) FROM jobs")
    assert row is not None and row[0] == 1


async def test_extend_reroll_and_remix_keep_working_after_a_restart(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.varied_clips = True
    first = await make_bot(limits={"concurrent_per_member": 5})
    await video(fake_discord, w, {"prompt": "a door opens slowly"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    post = await result_of(fake_discord, w, 1)
    h = await fake_discord.click(post, "hailuo:extend:1", user=w.member)
    await h.wait_modal()  # opened before the restart, submitted after it
    await first.close()

    await make_bot(limits={"concurrent_per_member": 5})
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "light floods in"})
    [answer] = await sub.wait_followups(1)
    assert "Job #2 is on its way" in answer.content
    assert_is_last_frame(sent_frame(e2e_sim), attachment(post, "hailuo-1-1.mp4"))
    _, answer = await extend(fake_discord, w, post, 1, {"prompt": "light floods in, again"})
    assert "Job #3" in answer.content
    h = await fake_discord.click(post, "hailuo:reroll:1", user=w.member)
    [answer] = await h.wait_followups(1)
    assert "Job #4" in answer.content
    h = await fake_discord.click(post, "hailuo:remix:1", user=w.member)
    await h.wait_modal()
    sub = await fake_discord.submit_modal(handle=h, values={"prompt": "a door slams"})
    [answer] = await sub.wait_followups(1)
    assert "Job #5" in answer.content


async def test_extend_with_a_blocked_phrase_is_refused_before_anything_is_reserved_or_sent(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """The blocklist (SPEC §4a) covers Extend too: the edited prompt is checked before the frame goes anywhere."""
    w = discord_world
    e2e_sim.varied_clips = True
    bot = await make_bot()
    await video(fake_discord, w, {"prompt": "a kite over the dunes"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    first = await result_of(fake_discord, w, 1)
    await bot.engine.blocklists.add(1000, w.moderator.id, "storm")

    _, answer = await extend(fake_discord, w, first, 1, {"prompt": "the kite is torn by a STORM"})
    assert answer.content == "This server does not allow “storm” in prompts."
    assert len(video_tasks(e2e_sim)) == 1 and upload_tasks(e2e_sim) == [], "nothing reached Runware"
    assert await bot.engine.jobs.get(2) is None, "nothing was reserved"

    _, answer = await extend(fake_discord, w, first, 1, {"prompt": "the kite lands softly"})
    assert "Job #2 is on its way" in answer.content
