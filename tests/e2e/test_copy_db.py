"""Moving an install: the real bot on SQLite, `copy-db` to PostgreSQL, the real bot on the copy says the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.copydb import copy_db
from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, e2e_settings
from tests.e2e.video_support import result_messages, results_after_delivery, video, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld


async def answers(fake: FakeDiscord, w: DiscordWorld) -> list[tuple[str, Any, list[bytes]]]:
    """What /usage, /jobs, /limits show and /limits report say, for the member and the moderator."""
    calls: list[tuple[str, dict[str, Any], Any]] = [
        ("usage", {}, w.member),
        ("jobs", {}, w.member),
        ("usage", {"member": w.member}, w.moderator),
        ("limits show", {}, w.moderator),
        ("limits show", {"member": w.member}, w.moderator),
        ("limits report", {"period": "day"}, w.moderator),
        ("limits report", {"period": "month"}, w.moderator),
    ]
    out = []
    for name, options, user in calls:
        h = await fake.send_command(name, options, user=user, channel=w.channel)
        [answer] = await h.wait_followups(1)
        out.append((name, answer.content, [a.data for a in answer.attachments]))
    return out


async def test_the_bot_on_the_copy_reads_the_same_usage_and_report(
    make_bot: BotFactory,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
    tmp_path: Path,
    pg_url: str,
) -> None:
    w = discord_world
    bot = await make_bot()
    h = await fake_discord.send_command(
        "limits set", {"period": "day", "amount": 1.5, "member": w.member}, user=w.moderator, channel=w.channel
    )
    await h.wait_followups(1)
    await video(fake_discord, w, {"prompt": "a whale breaching at sunset"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await fake_discord.wait_until(lambda: bool(result_messages(fake_discord, w.channel)), timeout=10)
    await results_after_delivery(bot, 1)
    e2e_sim.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    await video(fake_discord, w, {"prompt": "a refused idea"})
    await video(fake_discord, w, {"prompt": "a clip still running", "variations": 2})
    before = await answers(fake_discord, w)
    assert "$0.28 spent + $0.56 reserved of $1.50" in before[0][1]
    await bot.close()  # the install stops before it moves (make_bot's teardown awaits its task)

    lines: list[str] = []
    await copy_db(e2e_settings(tmp_path / "bot.sqlite3", e2e_sim, fake_discord), pg_url, lines.append)
    assert lines[-1].startswith("done:")

    await make_bot(database={"url": pg_url})
    after = await answers(fake_discord, w)
    assert after == before
