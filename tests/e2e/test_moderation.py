"""/limits and /videoadmin end to end: the real bot, the loopback Discord, the simulator and a real SQLite file."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from bot.core.models import format_usd
from bot.simulator.server import RunwareSimulator
from bot.store.guilds import AuditRow
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.models import FakeChannel, FakeMember
from tests.fakes.discord.world import DiscordWorld

MANAGE_GUILD = 1 << 5

#: Every moderator subcommand with the options it needs (tests add targets where they matter).
MODERATOR_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("limits set", {"period": "day", "amount": 1.0}),
    ("limits clear", {"period": "day"}),
    ("limits show", {}),
    ("limits report", {}),
    ("videoadmin defaults", {"resolution": "768p"}),
    ("videoadmin channel", {}),  # the channel option is filled in per test
    ("videoadmin safety", {"mode": "fast"}),
    ("videoadmin concurrency", {"per_member": 3}),
    ("videoadmin moderator-role", {}),  # the role option is filled in per test
    ("videoadmin confirm-above", {"amount": 1.0}),
    ("videoadmin pause", {}),
    ("videoadmin resume", {}),
    ("videoadmin audit", {}),
    ("videoadmin blocklist add", {"phrase": "tuba"}),
    ("videoadmin blocklist remove", {"phrase": "tuba"}),
    ("videoadmin blocklist list", {}),
]


async def ask(
    fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel
) -> tuple[str, Any]:
    """Run a command, check it deferred ephemerally and answered ephemerally; return (text, the answer)."""
    h = await fake.send_command(name, options, user=user, channel=channel)
    await h.wait_deferred()
    [answer] = await h.wait_followups(1)
    assert answer.ephemeral, (name, answer.content)
    return answer.content, answer


async def video(fake: FakeDiscord, user: FakeMember, channel: FakeChannel, **options: Any) -> str:
    text, _ = await ask(fake, "video", {"prompt": "a paper boat on a river", **options}, user=user, channel=channel)
    return text


async def audit(bot: LoopbackBot) -> list[AuditRow]:
    return list(reversed(await bot.engine.guilds.audit_rows(1000, limit=500)))


def video_tasks(sim: RunwareSimulator) -> list[dict[str, Any]]:
    return [t for r in sim.requests for t in r.tasks if t.get("taskType") == "videoInference"]


async def test_moderator_commands_refuse_plain_members_and_serve_moderators_and_the_moderator_role(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    helpers = fake.add_role(w.guild, "Helpers")
    carol = fake.add_member(w.guild, "carol", roles=[helpers])
    bot = await make_bot()

    registered = {c["name"]: c for c in fake.commands[1000]}
    for group in ("limits", "videoadmin"):
        assert registered[group]["default_member_permissions"] == str(MANAGE_GUILD)
        assert registered[group]["contexts"] == [0]  # servers only
    subcommands = {
        f"{g} {o['name']}" + (f" {leaf['name']}" if o["type"] == 2 else "")
        for g in ("limits", "videoadmin")
        for o in registered[g]["options"]
        for leaf in (o["options"] if o["type"] == 2 else [o])
    }
    assert subcommands == {name for name, _ in MODERATOR_COMMANDS}

    def options_for(name: str, opts: dict[str, Any]) -> dict[str, Any]:
        if name == "videoadmin channel":
            return {"channel": w.channel, "allowed": True}
        if name == "videoadmin moderator-role":
            return {"role": helpers}
        return opts

    # A server that reconfigured the commands' permissions does not open them: the bot checks again at run time.
    for name, opts in MODERATOR_COMMANDS:
        text, _ = await ask(fake, name, options_for(name, opts), user=w.member, channel=w.channel)
        assert text.startswith("You need the Manage Server permission to"), (name, text)
    text, _ = await ask(fake, "usage", {"member": w.moderator}, user=w.member, channel=w.channel)
    assert text == "Only moderators can look at someone else's usage. Use /usage without a member."
    assert await audit(bot) == []

    # Manage Server: every command works (moderator-role last but one, so the role is set for what follows).
    for name, opts in MODERATOR_COMMANDS:
        text, _ = await ask(fake, name, options_for(name, opts), user=w.moderator, channel=w.channel)
        assert not text.startswith(("You need", "Only members")), (name, text)
    assert (await bot.engine.guilds.get(1000)).moderator_role_id == helpers.id

    # The moderator role: everything except choosing the moderator role.
    for name, opts in MODERATOR_COMMANDS:
        text, _ = await ask(fake, name, options_for(name, opts), user=carol, channel=w.channel)
        if name == "videoadmin moderator-role":
            assert text == (
                "Only members with the Manage Server permission can choose the moderator role; "
                "the moderator role can't."
            )
        else:
            assert not text.startswith(("You need", "Only members")), (name, text)
    text, _ = await ask(fake, "usage", {"member": w.member}, user=carol, channel=w.channel)
    assert text.startswith(f"Usage of <@{w.member.user.id}>:")

    # With a moderator role set, the refusal names it.
    text, _ = await ask(fake, "limits show", {}, user=w.member, channel=w.channel)
    assert text == "You need Manage Server or the Helpers role to manage video spend limits."
    text, _ = await ask(fake, "videoadmin pause", {}, user=w.member, channel=w.channel)
    assert text == "You need Manage Server or the Helpers role to change the video bot's server settings."
    assert not (await bot.engine.guilds.get(1000)).paused

    # A check that fails (here: the settings store) answers with the generic line and an error id, never silence.
    async def broken(guild_id: int) -> Any:
        raise RuntimeError("the database went away")

    real = bot.engine.guilds.get
    bot.engine.guilds.get = broken  # type: ignore[method-assign]
    try:
        text, _ = await ask(fake, "limits show", {}, user=w.member, channel=w.channel)
    finally:
        bot.engine.guilds.get = real  # type: ignore[method-assign]
    assert text.startswith("Something went wrong on the bot's side (error id ")


async def test_member_role_channel_and_server_limits_each_stop_the_job_they_should_until_cleared(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    artists = fake.add_role(w.guild, "Artists")
    leads = fake.add_role(w.guild, "Leads")
    carol = fake.add_member(w.guild, "carol", roles=[artists, leads])
    dave = fake.add_member(w.guild, "dave", roles=[artists])
    studio = fake.add_channel(w.guild, "studio")
    await make_bot()
    mod = w.moderator

    async def limit(op: str, period: str, **opts: Any) -> str:
        text, _ = await ask(fake, f"limits {op}", {"period": period, **opts}, user=mod, channel=w.channel)
        return text

    # Member limit (a 768p 6 s clip is estimated at $0.28).
    text = await limit("set", "day", amount=0.2, member=w.member)
    assert text.startswith(f"✅ Set <@{w.member.user.id}>'s daily limit to **$0.20** (there was none before).")
    assert f"<@{w.member.user.id}>'s daily limit**: $0.00 spent of $0.20 · **$0.20 left**" in text
    refused = await video(fake, w.member, w.channel)
    assert refused.startswith("This job would go over your daily limit: $0.20 left of $0.20, and it needs $0.28.")
    assert "The limit resets <t:" in refused
    text = await limit("clear", "day", member=w.member)
    assert text.startswith(f"✅ Cleared <@{w.member.user.id}>'s daily limit (it was $0.20).")
    assert "daily limit (config default)**: $0.00 spent of $2.00" in text
    assert (await video(fake, w.member, w.channel)).startswith("Job #1 is on its way")

    # Role limits: with two roles the most generous applies; one role alone stops dave.
    await limit("set", "day", amount=0.1, role=artists)
    text = await limit("set", "day", amount=0.3, role=leads)
    assert f"The daily limit of each member with <@&{leads.id}>**: $0.30, counted for each member" in text
    assert (await video(fake, carol, w.channel)).startswith("Job #2 is on its way")
    refused = await video(fake, carol, w.channel)
    assert refused.startswith("This job would go over your role's daily limit: $0.02 left of $0.30")
    refused = await video(fake, dave, w.channel)
    assert refused.startswith("This job would go over your role's daily limit: $0.10 left of $0.10")
    text, _ = await ask(fake, "limits show", {"member": dave}, user=mod, channel=w.channel)
    assert f"The daily limit of each member with <@&{artists.id}>**: $0.00 spent of $0.10" in text
    await limit("clear", "day", role=artists)
    assert (await video(fake, dave, w.channel)).startswith("Job #3 is on its way")

    # Channel limit: counts every job in that channel, whoever asks.
    await limit("set", "week", amount=0.25, channel=studio)
    refused = await video(fake, dave, studio)
    assert refused.startswith("This job would go over this channel's weekly limit: $0.25 left of $0.25")
    await limit("clear", "week", channel=studio)
    assert (await video(fake, dave, studio)).startswith("Job #4 is on its way")

    # Server limit: four jobs hold $1.12; a $1.20 monthly cap leaves $0.08.
    text = await limit("set", "month", amount=1.2)
    assert text.startswith("✅ Set the server's monthly limit to **$1.20** (there was none before).")
    assert "The server's monthly limit**: $0.00 spent + $1.12 reserved of $1.20 · **$0.08 left**" in text
    refused = await video(fake, mod, w.channel)
    assert refused.startswith("This job would go over the server's monthly limit: $0.08 left of $1.20")
    text = await limit("clear", "month")
    assert "The server's monthly limit (config default)**: $0.00 spent + $1.12 reserved of $200.00" in text
    assert (await video(fake, mod, w.channel)).startswith("Job #5 is on its way")

    # 0 blocks; several targets at once are refused; nothing to clear is said plainly.
    text = await limit("set", "day", amount=0, member=carol)
    assert "to **$0.00** (there was none before): this **blocks** every job charged to it." in text
    assert (await video(fake, carol, w.channel)).startswith("Your daily limit is $0.00, so no jobs can be charged")
    text = await limit("set", "day", amount=1, member=carol, role=leads)
    assert text == (
        "Choose at most one of member, role or channel (you gave member and role). "
        "Leave all three out for the server-wide limit."
    )
    text = await limit("clear", "week", channel=studio)
    assert text.startswith(f"There is no weekly limit set for <#{studio.id}>, so nothing changed.")
    assert len(video_tasks(e2e_sim)) == 5  # refused jobs never reached Runware


async def test_server_settings_change_what_video_does(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    studio = fake.add_channel(w.guild, "studio")
    await make_bot()
    mod = w.moderator

    async def admin(name: str, **opts: Any) -> str:
        text, _ = await ask(fake, f"videoadmin {name}", opts, user=mod, channel=w.channel)
        return text

    # Defaults and the variations cap.
    text = await admin("defaults", resolution="1080p", duration=10)
    assert text.startswith("1080p clips can't be 10 s long. Allowed: 768p: 6 or 10 s; 1080p: 6 s.")
    text = await admin("defaults", resolution="1080p", variations_cap=2, prompt_optimizer=True)
    assert text.startswith("✅ Default resolution: 768p → 1080p; Variations cap: 4 → 2; Prompt optimizer: off → on.")
    assert "• /video defaults: **1080p**, **6 s**, up to **2** variations, prompt optimizer **on**" in text
    assert (await video(fake, w.member, w.channel)).startswith("Job #1 is on its way")
    task = video_tasks(e2e_sim)[-1]
    assert (task["width"], task["height"], task["duration"]) == (1920, 1080, 6)
    assert task["providerSettings"] == {"minimax": {"promptOptimizer": True}}
    assert "safety" not in task  # the default safety mode is none
    refused = await video(fake, w.member, w.channel, variations=3)
    assert refused == "Variations must be between 1 and 2 in this server (you asked for 3)."

    # Safety mode: sent to Runware with the task.
    text = await admin("safety", mode="full")
    assert text.startswith("✅ Safety checks: none → full.\nRunware runs its full content check on every new clip.")
    assert "• Safety checks of generated clips: **full**" in text
    assert (await video(fake, mod, w.channel, resolution="768p")).startswith("Job #2 is on its way")
    assert video_tasks(e2e_sim)[-1]["safety"] == {"checkContent": True, "mode": "full"}

    # Concurrency: alice has one unfinished job; a cap of 1 stops her second.
    text = await admin("concurrency", per_member=1)
    assert text.startswith("✅ Unfinished jobs per member: 2 → 1.")
    assert "• Unfinished jobs per member: at most **1**" in text
    refused = await video(fake, w.member, w.channel)
    assert refused.startswith("You already have 1 unfinished video job, and this server allows 1 at a time.")
    await admin("concurrency", per_member=2)

    # Allowed channels: once one is allowed, only allowed ones take /video.
    text = await admin("channel", channel=studio, allowed=True)
    assert text.startswith(f"✅ Updated <#{studio.id}>: Allowed: off → on.")
    refused = await video(fake, w.member, w.channel)
    assert refused == f"/video can't be used in this channel. Try one of these: <#{studio.id}>."
    assert (await video(fake, w.member, studio, resolution="768p")).startswith("Job #3 is on its way")

    # Pause and resume: new jobs refused while paused, then taken again.
    text = await admin("pause")
    assert text.startswith("✅ New jobs: running → paused.\nNew /video jobs, rerolls and remixes are refused")
    refused = await video(fake, mod, studio)
    assert refused.startswith("Video generation is paused in this server by its moderators.")
    text = await admin("resume")
    assert text.startswith("✅ New jobs: paused → running.\n/video takes new jobs again.")
    assert (await video(fake, mod, studio, resolution="768p")).startswith("Job #4 is on its way")
    assert len(video_tasks(e2e_sim)) == 4


async def test_every_change_writes_an_audit_row_with_who_what_old_and_new(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    helpers = fake.add_role(w.guild, "Helpers")
    studio = fake.add_channel(w.guild, "studio")
    bot = await make_bot()
    mod, uid = w.moderator, w.moderator.user.id
    steps: list[tuple[str, dict[str, Any]]] = [
        ("limits set", {"period": "day", "amount": 1.5, "member": w.member}),
        ("limits set", {"period": "day", "amount": 2.25, "member": w.member}),
        ("limits clear", {"period": "day", "member": w.member}),
        ("limits set", {"period": "week", "amount": 3, "role": helpers}),
        ("limits set", {"period": "month", "amount": 10, "channel": studio}),
        ("limits set", {"period": "month", "amount": 50}),
        ("videoadmin defaults", {"duration": 10, "variations_cap": 6}),
        ("videoadmin channel", {"channel": studio, "allowed": True, "threads": True, "pool": True}),
        ("videoadmin safety", {"mode": "fast"}),
        ("videoadmin concurrency", {"per_member": 5}),
        ("videoadmin moderator-role", {"role": helpers}),
        ("videoadmin pause", {}),
        ("videoadmin resume", {}),
        ("videoadmin moderator-role", {"role": w.guild.roles[w.guild.id]}),  # @everyone removes it
    ]
    for name, opts in steps:
        text, _ = await ask(fake, name, opts, user=mod, channel=w.channel)
        assert text.startswith("✅"), (name, text)
    # Reading changes nothing.
    await ask(fake, "limits show", {}, user=mod, channel=w.channel)
    await ask(fake, "videoadmin defaults", {}, user=mod, channel=w.channel)

    rows = await audit(bot)
    m = w.member.user.id
    assert [(r.action, r.target, r.old_value, r.new_value) for r in rows] == [
        ("limit.set", f"member:{m}:day", None, "1500000"),
        ("limit.set", f"member:{m}:day", "1500000", "2250000"),
        ("limit.clear", f"member:{m}:day", "2250000", None),
        ("limit.set", f"role:{helpers.id}:week", None, "3000000"),
        ("limit.set", f"channel:{studio.id}:month", None, "10000000"),
        ("limit.set", "server:1000:month", None, "50000000"),
        ("setting", "default_duration", None, "10"),
        ("setting", "variations_cap", None, "6"),
        ("channel", f"{studio.id}:allowed", "0", "1"),
        ("channel", f"{studio.id}:threads", "0", "1"),
        ("channel", f"{studio.id}:pool", "0", "1"),
        ("setting", "safety_mode", None, "fast"),
        ("setting", "concurrent_per_member", None, "5"),
        ("setting", "moderator_role_id", None, str(helpers.id)),
        ("setting", "paused", None, "1"),
        ("setting", "paused", "1", "0"),
        ("setting", "moderator_role_id", str(helpers.id), None),
    ]
    assert {r.actor_id for r in rows} == {uid}
    assert all(r.at.tzinfo is not None for r in rows)


async def test_limits_show_and_report_match_the_ledger_with_a_png_chart(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    pool = fake.add_channel(w.guild, "brainstorm")
    bob = fake.add_member(w.guild, "bob")
    bot = await make_bot()
    mod = w.moderator
    await ask(fake, "videoadmin channel", {"channel": pool, "pool": True}, user=mod, channel=w.channel)

    assert (await video(fake, w.member, w.channel)).startswith("Job #1")
    assert (await video(fake, w.member, w.channel, variations=2)).startswith("Job #2")
    assert (await video(fake, bob, pool)).startswith("Job #3")
    assert (await video(fake, mod, pool)).startswith("Job #4")
    tasks = video_tasks(e2e_sim)
    for task in tasks[:3]:  # jobs 1-3 settle at the simulator's cost; job 4 stays reserved
        e2e_sim.finish(task["taskUUID"])
    await fake.wait_until(
        lambda: len([m for ch in (w.channel, pool) for m in fake.channel_messages(ch) if m.attachments]) == 3,
        timeout=10,
        what="three posted results",
    )
    # Money settles before the clips are posted, so the ledger is final now.
    rows = await bot.engine.db.fetchall(
        "SELECT payer, status, held_micros, charged_micros FROM ledger WHERE guild_id = ?", (1000,)
    )
    settled = sum(int(r["charged_micros"]) for r in rows if r["status"] == "settled")
    held = sum(int(r["held_micros"]) for r in rows if r["status"] == "held")
    assert [r["status"] for r in rows].count("settled") == 3 and held == 280_000

    text, answer = await ask(fake, "limits report", {"period": "day"}, user=mod, channel=w.channel)
    total = re.search(r"\*\*Total: (\$[0-9.]+)\*\* — (\$[0-9.]+) settled \+ (\$[0-9.]+) reserved · 4 jobs", text)
    assert total is not None, text
    assert total.groups() == (format_usd(settled + held), format_usd(settled), format_usd(held))
    alice_total = sum(
        int(r["charged_micros"]) if r["status"] == "settled" else int(r["held_micros"])
        for r in rows
        if r["payer"] == "member"
    )
    assert f"1. <@{w.member.user.id}> {format_usd(alice_total)} · 2 jobs" in text
    assert f"1. <#{w.channel.id}> {format_usd(alice_total)} · 2 jobs" in text
    assert "**Team pools**" in text and f"<#{pool.id}>" in text
    [chart] = answer.attachments
    assert chart.filename == "spend.png"
    assert chart.data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(chart.data)) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] >= 600

    # /limits show: the pool's spend against its limit, the server's against its own.
    await ask(fake, "limits set", {"period": "day", "amount": 5, "channel": pool}, user=mod, channel=w.channel)
    text, _ = await ask(fake, "limits show", {"channel": pool}, user=mod, channel=w.channel)
    pool_rows = [r for r in rows if r["payer"] == "pool"]
    pool_settled = sum(int(r["charged_micros"]) for r in pool_rows if r["status"] == "settled")
    assert "It is a team pool" in text
    assert (
        f"<#{pool.id}>'s daily limit**: {format_usd(pool_settled)} spent + $0.28 reserved of $5.00 · "
        f"**{format_usd(5_000_000 - pool_settled - 280_000)} left**"
    ) in text
    text, _ = await ask(fake, "limits show", {}, user=mod, channel=w.channel)
    assert (
        f"The server's monthly limit (config default)**: {format_usd(settled)} spent + {format_usd(held)} reserved"
    ) in text
    assert "• Daily: $2.00 per member (the config default)" in text
