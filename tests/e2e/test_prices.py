"""Prices that follow Runware (SPEC §4a), and /limits report's operator line and per-period chart, end to end: the
real bot, the loopback Discord, the Runware simulator reporting its own costs, and a real SQLite file."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bot.core.service import VideoOptions
from bot.doctor import check_prices, run_checks
from bot.generate import OPERATOR
from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import ledger, result_messages, video_tasks
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.discord.models import FakeChannel, FakeMember
from tests.fakes.discord.world import DiscordWorld

SIZE = (1366, 768, 6)  # 768p, 6 s: $0.28 a clip in the configured [pricing]


async def ask(
    fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel
) -> FakeMessage:
    h = await fake.send_command(name, options, user=user, channel=channel)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral and len(answer.content) <= 2000, answer.content
    return answer


async def finish_all(bot: LoopbackBot, fake: FakeDiscord, sim: RunwareSimulator, channel: FakeChannel) -> None:
    """Let Runware finish every task sent so far and wait until each job's clips are posted (money settled)."""
    before = len(result_messages(fake, channel))
    tasks = [t for t in video_tasks(sim) if not sim.tasks[t["taskUUID"]].finished]
    for task in tasks:
        sim.finish(task["taskUUID"])
    await bot.engine.tracker.sweep_once()
    await fake.wait_until(lambda: len(result_messages(fake, channel)) == before + len(tasks), 10, "the clips")


async def test_reservations_follow_the_median_runware_reports_so_a_stale_price_cannot_pass_a_limit(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bob = fake.add_member(w.guild, "bob")
    bot = await make_bot(runware={"poll_interval": 3600}, limits={"member_day_usd": 100.0, "member_month_usd": 100.0})
    mod, alice = w.moderator, w.member

    async def video(user: FakeMember, **opts: Any) -> str:
        prompt = {"prompt": "a lantern on a lake", **opts}
        return (await ask(fake, "video", prompt, user=user, channel=w.channel)).content

    # Runware charges more than the table says: $0.42 a clip, then $0.40 (a price list out of date).
    e2e_sim.costs[SIZE] = 0.42
    assert "about $0.56 reserved" in await video(alice, variations=2)  # nothing reported yet: the table
    await finish_all(bot, fake, e2e_sim, w.channel)
    assert await ledger(bot) == [(1, "settled", 560_000, 840_000)]
    assert "about $0.42 reserved" in await video(alice)  # one report: $0.84 for 2 clips is $0.42 a clip
    e2e_sim.costs[SIZE] = 0.40
    await finish_all(bot, fake, e2e_sim, w.channel)
    assert "about $0.84 reserved" in await video(alice, variations=2)  # median of $0.42, $0.40: $0.42
    await finish_all(bot, fake, e2e_sim, w.channel)
    # Reported costs: $0.42, $0.40, $0.40 a clip: the median is $0.40.
    assert "about $0.40 reserved" in await video(alice)
    await finish_all(bot, fake, e2e_sim, w.channel)

    # A $0.30 daily limit: the configured $0.28 would have let bob through; what Runware charges does not.
    await ask(fake, "limits set", {"period": "day", "amount": 0.3, "member": bob}, user=mod, channel=w.channel)
    sent = len(video_tasks(e2e_sim))
    refused = await video(bob)
    assert refused.startswith("This job would go over your daily limit: $0.30 left of $0.30, and it needs $0.40.")
    assert len(video_tasks(e2e_sim)) == sent, "nothing reached Runware"
    # Sizes Runware never reported keep the configured price.
    assert "about $0.49 reserved" in await video(mod, resolution="1080p")

    # The report and the doctor show the drift, with both figures.
    report = (await ask(fake, "limits report", {"period": "week"}, user=mod, channel=w.channel)).content
    assert "**Prices that differ from what Runware charged** (reservations use the larger figure):" in report
    assert "• 768p 6 s: configured $0.28 a clip, Runware charged $0.40 (median of the last 4, +43 %)" in report
    assert "1080p" not in report.split("Prices that differ")[1]  # reported nothing: no drift claimed
    found = await check_prices(bot.engine.settings)
    assert found.ok and found.warning
    assert found.text.startswith("768p-6: configured $0.28, Runware charged $0.40 (median of 4, +43 %)")
    assert "update [pricing]" in found.text
    lines = [f.line() for f in await run_checks(bot.engine.settings, "config.toml")]
    assert any(line.startswith("[warn] prices: 768p-6: configured $0.28, Runware charged $0.40") for line in lines)


async def test_a_price_within_five_percent_is_not_reported_and_reserves_the_configured_price(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot(runware={"poll_interval": 3600})
    e2e_sim.costs[SIZE] = 0.27  # cheaper than the table, within 5 %: the table stands
    await ask(fake, "video", {"prompt": "a lantern"}, user=w.member, channel=w.channel)
    await finish_all(bot, fake, e2e_sim, w.channel)
    text = (await ask(fake, "video", {"prompt": "a lantern"}, user=w.member, channel=w.channel)).content
    assert "about $0.28 reserved" in text
    report = (await ask(fake, "limits report", {}, user=w.moderator, channel=w.channel)).content
    assert "Prices that differ" not in report
    found = await check_prices(bot.engine.settings)
    assert found.ok and not found.warning and "within 5 %" in found.text


async def test_the_report_shows_the_operators_spend_apart_and_charts_the_chosen_period(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot(runware={"poll_interval": 3600})
    await ask(fake, "video", {"prompt": "a lantern"}, user=w.member, channel=w.channel)
    # The operator's `hailuo-bot generate` path (planned and reserved as the CLI does): guild 0, payer operator.
    service = bot.engine.service
    plan = await service.plan(VideoOptions(prompt="an operator's test clip", variations=2), OPERATOR, operator=True)
    await service.reserve(plan)

    charts: dict[str, bytes] = {}
    for period in ("day", "week", "month"):
        answer = await ask(fake, "limits report", {"period": period}, user=w.moderator, channel=w.channel)
        text = answer.content
        assert "**Total: $0.28** — $0.00 settled + $0.28 reserved · 1 job" in text, text
        assert "Operator jobs (`hailuo-bot generate`), not in the totals: $0.56 · 1 job" in text, text
        unit = "hour" if period == "day" else "day"
        assert text.endswith(f"Spend per {unit} is in the attached chart."), text
        [chart] = answer.attachments
        with Image.open(io.BytesIO(chart.data)) as image:
            assert image.format == "PNG"
        charts[period] = chart.data
    assert len(set(charts.values())) == 3, "each period draws its own chart"
