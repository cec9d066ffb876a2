"""The status says how long jobs of its size usually take (SPEC §4a): the median of the last 50, from 5 on."""

from __future__ import annotations

from datetime import timedelta

from bot.core.models import utc_now
from bot.simulator.server import RunwareSimulator
from bot.store.sqlite.db import to_db_time
from tests.e2e.conftest import BotFactory
from tests.e2e.video_support import results_after_delivery, video, video_tasks
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.discord.world import DiscordWorld


async def generating_status(fake: FakeDiscord, w: DiscordWorld, job_id: int) -> FakeMessage:
    return await fake.wait_for_message(
        w.channel, lambda m: m.content.startswith("🎬 Generating") and f"job #{job_id} " in m.content, timeout=10
    )


async def test_the_status_shows_the_usual_time_once_five_jobs_of_that_size_have_finished(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    bot = await make_bot(limits={"concurrent_per_member": 10, "member_day_usd": 10.0})
    start = utc_now() - timedelta(hours=1)
    for job_id, minutes in zip(range(1, 6), (2, 3, 3, 4, 9), strict=True):
        await video(fake_discord, w, {"prompt": f"a clock tower at dusk, take {job_id}"})
        status = await generating_status(fake_discord, w, job_id)
        assert "Usually ready" not in status.content, f"only {job_id - 1} of that size had finished"
        e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
        await fake_discord.wait_for_message(w.channel, lambda m, j=job_id: f"hailuo:delete:{j}" in m.custom_ids())
        await results_after_delivery(bot, job_id)
        # How long it took at Runware (the simulator finishes at once; these are the spans members would see).
        await bot.engine.db.execute(
            "UPDATE jobs SET submitted_at = ?, finished_at = ? WHERE id = ?",
            (to_db_time(start), to_db_time(start + timedelta(minutes=minutes)), job_id),
        )

    await video(fake_discord, w, {"prompt": "a clock tower at dawn"})
    status = await generating_status(fake_discord, w, 6)
    assert "Usually ready in about 3 min" in status.content  # the median of 2, 3, 3, 4 and 9 minutes

    _, ack = await video(fake_discord, w, {"prompt": "a clock tower at noon", "duration": 10})
    assert "Job #7" in ack.content
    status = await generating_status(fake_discord, w, 7)
    assert "Usually ready" not in status.content, "no 768p 10 s job has finished yet"
