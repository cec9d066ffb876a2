"""SPEC as an outside tester reads it: the exact command shapes of §4, ephemeral answers, the task fields of §3.4,
the webhook secret of §7/§8b, Runware rejections of §8, command sync of §7, and the real process of §7b.

Everything here is driven by names (commands, options, config keys, environment variables), never by internals.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.engine import WEBHOOK_SECRET_KEY
from bot.simulator.server import RunwareSimulator
from tests.e2e.conftest import LoopbackBot, e2e_settings, start_bot, stop_bot
from tests.e2e.video_support import ledger, png_bytes, result_messages, status_messages, video, video_tasks
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.world import DiscordWorld
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 10, 11
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
MANAGE_GUILD = "32"
EPHEMERAL = 1 << 6
DEFERRED_CHANNEL_MESSAGE = 5

Option = tuple[str, int, bool, list[Any] | None]  # name, type, required, choice values (None: free)
Subcommands = dict[str, "list[Option] | Subcommands"]  # a dict value is a subcommand group
PERIOD: list[Any] = ["day", "week", "month"]
TARGETS: list[Option] = [("member", USER, False, None), ("role", ROLE, False, None), ("channel", CHANNEL, False, None)]

#: SPEC §4, option by option, in the order SPEC lists them.
SPEC_COMMANDS: dict[str, list[Option] | Subcommands] = {
    "video": [
        ("prompt", STRING, True, None),
        ("first_frame", ATTACHMENT, False, None),
        ("last_frame", ATTACHMENT, False, None),
        ("resolution", STRING, False, ["768p", "1080p"]),
        ("duration", INTEGER, False, [6, 10]),
        ("variations", INTEGER, False, None),
        ("prompt_optimizer", BOOLEAN, False, None),
    ],
    "jobs": [],
    "usage": [("member", USER, False, None)],
    "limits": {
        "set": [("period", STRING, True, PERIOD), ("amount", NUMBER, True, None), *TARGETS],
        "clear": [("period", STRING, True, PERIOD), *TARGETS],
        "show": TARGETS,
        "report": [("period", STRING, False, PERIOD)],
    },
    "videoadmin": {
        "defaults": [
            ("resolution", STRING, False, ["768p", "1080p"]),
            ("duration", INTEGER, False, [6, 10]),
            ("variations_cap", INTEGER, False, None),
            ("prompt_optimizer", BOOLEAN, False, None),
        ],
        "channel": [
            ("channel", CHANNEL, True, None),
            ("allowed", BOOLEAN, False, None),
            ("threads", BOOLEAN, False, None),
            ("pool", BOOLEAN, False, None),
        ],
        "safety": [("mode", STRING, True, ["none", "fast", "full"])],
        "concurrency": [("per_member", INTEGER, True, None)],
        "moderator-role": [("role", ROLE, True, None)],
        "confirm-above": [("amount", NUMBER, True, None)],
        "pause": [],
        "resume": [],
        # SPEC §4a
        "audit": [("member", USER, False, None), ("count", INTEGER, False, None)],
        "blocklist": {
            "add": [("phrase", STRING, True, None)],
            "remove": [("phrase", STRING, True, None)],
            "list": [],
        },
    },
}


def shape(options: list[dict[str, Any]] | None) -> list[Option]:
    out: list[Option] = []
    for o in options or []:
        choices = [c["value"] for c in o["choices"]] if o.get("choices") else None
        out.append((o["name"], o["type"], bool(o.get("required")), choices))
    return out


#: SPEC §4a: message commands (Apps menu on a message), by name.
SPEC_MESSAGE_COMMANDS = ["Animate image"]
MESSAGE_COMMAND = 3


def assert_subcommands(name: str, options: list[dict[str, Any]], spec: Subcommands) -> None:
    subs = {o["name"]: o for o in options}
    assert sorted(subs) == sorted(spec), name
    for sub, sub_spec in spec.items():
        if isinstance(sub_spec, dict):
            assert subs[sub]["type"] == SUB_COMMAND_GROUP, f"/{name} {sub}"
            assert_subcommands(f"{name} {sub}", subs[sub]["options"], sub_spec)
        else:
            assert subs[sub]["type"] == SUB_COMMAND, f"/{name} {sub}"
            assert shape(subs[sub].get("options")) == sub_spec, f"/{name} {sub}"


def assert_spec_shape(registered: list[dict[str, Any]]) -> None:
    commands = {c["name"]: c for c in registered if c.get("type", 1) == 1}
    assert sorted(commands) == sorted(SPEC_COMMANDS), "exactly the commands of SPEC §4"
    menus = {c["name"]: c for c in registered if c.get("type") == MESSAGE_COMMAND}
    assert sorted(menus) == sorted(SPEC_MESSAGE_COMMANDS), "exactly the message commands of SPEC §4a"
    for name, menu in menus.items():
        assert not menu.get("options") and not menu.get("description"), name
        assert menu.get("default_member_permissions") is None, f"{name} is for everyone"
        if "guild_id" not in menu:  # what the bot sent, or a global command: not in DMs
            assert menu.get("dm_permission") is False or menu.get("contexts") == [0], f"{name} is guild-only"
    assert len(registered) == len(commands) + len(menus), "no other kind of command"
    for name, spec in SPEC_COMMANDS.items():
        cmd = commands[name]
        assert cmd["type"] == 1, name  # a slash command
        if isinstance(spec, dict):
            # default_permissions(manage_guild=True): discord.py sends the number, Discord keeps the string.
            assert str(cmd["default_member_permissions"]) == MANAGE_GUILD, name
            assert_subcommands(name, cmd["options"], spec)
        else:
            assert cmd["default_member_permissions"] is None, f"/{name} is for everyone"
            assert shape(cmd.get("options")) == spec, f"/{name}"
    # Values typed by hand are bounded as SPEC says (the bot checks the server's own caps at run time).
    video_opts = {o["name"]: o for o in commands["video"]["options"]}
    assert (video_opts["variations"].get("min_value"), video_opts["variations"].get("max_value")) == (1, 20)
    set_opts = {o["name"]: o for o in commands["limits"]["options"][0]["options"]}
    assert set_opts["amount"].get("min_value") == 0, "0 blocks; negative amounts are refused"
    admin = {o["name"]: o for o in commands["videoadmin"]["options"]}
    count = {o["name"]: o for o in admin["audit"]["options"]}["count"]
    assert (count.get("min_value"), count.get("max_value")) == (1, 50), "default 20, at most 50"
    for sub in admin["blocklist"]["options"]:
        for phrase in sub.get("options") or []:
            assert (phrase.get("min_length"), phrase.get("max_length")) == (1, 100), "phrases are 1–100 characters"


async def test_registered_commands_have_the_exact_shape_of_spec_section_4(
    hailuo: LoopbackBot, fake_discord: FakeDiscord
) -> None:
    puts = fake_discord.requests_to("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    assert puts and puts[-1].status == 200
    assert_spec_shape(puts[-1].json)  # what the bot sent
    assert_spec_shape(fake_discord.commands[1000])  # what Discord kept


async def test_without_dev_guild_ids_commands_are_synced_globally(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator, tmp_path: Path
) -> None:
    settings = e2e_settings(tmp_path / "bot.sqlite3", e2e_sim, fake_discord, discord={"dev_guild_ids": []})
    bot = LoopbackBot(settings, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start(settings.discord.token.get_secret_value()))
    try:
        await fake_discord.wait_until(lambda: bool(fake_discord.commands.get(None)) or task.done(), 15, "global sync")
        assert 1000 not in fake_discord.commands
        assert_spec_shape(fake_discord.commands[None])
    finally:
        await stop_bot(bot, task)


async def test_every_command_defers_ephemerally_and_answers_ephemerally(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    helpers = fake_discord.add_role(w.guild, "Helpers")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("video", {"prompt": "a"}),  # an error: ephemeral too
        ("jobs", {}),
        ("usage", {}),
        ("usage", {"member": w.member}),
        ("limits set", {"period": "week", "amount": 5, "role": helpers}),
        ("limits show", {"role": helpers}),
        ("limits show", {}),
        ("limits clear", {"period": "week", "role": helpers}),
        ("limits report", {"period": "day"}),
        ("videoadmin defaults", {}),
        ("videoadmin channel", {"channel": w.channel}),
        ("videoadmin safety", {"mode": "none"}),
        ("videoadmin concurrency", {"per_member": 2}),
        ("videoadmin moderator-role", {"role": helpers}),
        ("videoadmin pause", {}),
        ("videoadmin resume", {}),
        ("videoadmin audit", {}),
        ("videoadmin blocklist add", {"phrase": "tuba"}),
        ("videoadmin blocklist list", {}),
        ("videoadmin blocklist remove", {"phrase": "tuba"}),
    ]
    for name, options in calls:
        h = await fake_discord.send_command(name, options, user=w.moderator, channel=w.channel)
        await h.wait_deferred()
        assert h.callback_type == DEFERRED_CHANNEL_MESSAGE, name
        assert (h.callback_data or {}).get("flags", 0) & EPHEMERAL, f"/{name} must defer ephemerally"
        [answer] = await h.wait_followups(1)
        assert answer.ephemeral, (name, answer.content)
        assert "error id" not in answer.content and "Traceback" not in answer.content, (name, answer.content)
        if name == "limits report":
            [chart] = answer.attachments
            assert chart.data.startswith(b"\x89PNG"), "the report carries a PNG chart"
    assert fake_discord.channel_messages(w.channel) == [], "nothing public came of these"
    assert e2e_sim.requests == []


def generated_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "WEBHOOK_SECRET is not set" in r.getMessage()]


async def test_task_fields_fresh_uuid4_and_a_generated_webhook_secret_kept_across_restarts(
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """§3.4 fields, taskUUID a fresh UUID v4 per job (a reroll too); §7: public_url without WEBHOOK_SECRET."""
    caplog.set_level(logging.INFO)
    w = discord_world
    port = free_port()
    public = f"http://127.0.0.1:{port}"  # the simulator reaches the receiver there, as Runware would
    settings = e2e_settings(
        tmp_path / "bot.sqlite3",
        e2e_sim,
        fake_discord,
        webhook={"listen": f"127.0.0.1:{port}", "public_url": public},
        runware={"poll_interval": 3600},  # results can only come by webhook
    )
    assert settings.webhook.secret.get_secret_value() == ""
    bot, running = await start_bot(settings, fake_discord)
    try:
        secret = await bot.engine.jobs.get_kv(WEBHOOK_SECRET_KEY)
        assert secret and len(secret) >= 32
        assert len(generated_lines(caplog)) == 1, "it says it made one"

        first = fake_discord.add_attachment("first.png", png_bytes())
        await video(fake_discord, w, {"prompt": "a kite over the dunes", "first_frame": first})
        [task] = video_tasks(e2e_sim)
        assert task["deliveryMethod"] == "async" and task["includeCost"] is True
        assert (task["width"], task["height"], task["duration"], task["fps"], task["numberResults"]) == (
            1366,
            768,
            6,
            25,
            1,
        )
        assert task["webhookURL"] == f"{public}/runware/{secret}"
        assert uuid.UUID(task["taskUUID"]).version == 4
        [frame] = task["inputs"]["frameImages"]
        assert frame["frame"] == "first"

        e2e_sim.finish(task["taskUUID"])  # the simulator posts the webhook to webhookURL; no poll round runs
        result = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=10)
        h = await fake_discord.click(result, "hailuo:reroll:1", user=w.member)
        await h.wait_deferred()
        assert (h.callback_data or {}).get("flags", 0) & EPHEMERAL
        await h.wait_followups(1)
        tasks = video_tasks(e2e_sim)
        assert len(tasks) == 2
        again = tasks[1]
        assert uuid.UUID(again["taskUUID"]).version == 4 and again["taskUUID"] != task["taskUUID"]
        same = {k: v for k, v in task.items() if k != "taskUUID"}
        assert {k: v for k, v in again.items() if k != "taskUUID"} == same, "a reroll sends the same parameters"

        # A wrong secret is refused, logged, and changes nothing.
        async with aiohttp.ClientSession() as http, http.post(f"{public}/runware/wrong", json={"data": []}) as resp:
            assert resp.status == 401
        assert any("webhook rejected: bad_secret" in r.getMessage() for r in caplog.records)
    finally:
        await stop_bot(bot, running)

    # A restart keeps the same secret: webhooks addressed before it still arrive.
    bot, running = await start_bot(settings, fake_discord)
    try:
        assert await bot.engine.jobs.get_kv(WEBHOOK_SECRET_KEY) == secret
        assert len(generated_lines(caplog)) == 1, "made once, not at every start"
        e2e_sim.finish(again["taskUUID"])
        await fake_discord.wait_until(
            lambda: len(result_messages(fake_discord, w.channel)) == 2, 10, "the reroll's clip"
        )
    finally:
        await stop_bot(bot, running)
    for record in caplog.records:
        assert secret not in record.getMessage()
    assert fake_discord.violations == []


@pytest.mark.parametrize(
    ("code", "http_status", "words"),
    [
        ("invalidPositivePrompt", 400, "Runware refused this request as invalid"),
        ("invalidApiKey", 401, "could not sign in to Runware"),
        ("contentPolicyViolation", 400, "content checks refused"),
    ],
    ids=["validation", "auth", "safety"],
)
async def test_a_task_runware_rejects_is_explained_on_the_status_and_released(
    hailuo: LoopbackBot,
    fake_discord: FakeDiscord,
    discord_world: DiscordWorld,
    e2e_sim: RunwareSimulator,
    code: str,
    http_status: int,
    words: str,
) -> None:
    """§8: validation, auth and safety rejections (credits: test_video_refusals) — plain words, hold released."""
    w = discord_world
    e2e_sim.faults.reject_next_submits(code, 1, http_status=http_status)
    _, answer = await video(fake_discord, w, {"prompt": "a comet over the desert"})
    assert "Job #1 did not start" in answer.content and words in answer.content, answer.content
    [status] = status_messages(fake_discord, w.channel)
    assert status.content.startswith("❌ Failed") and words in status.content, status.content
    if code != "invalidPositivePrompt":  # a validation error may quote Runware's own message; others never
        assert code not in status.content, "no raw codes for members"
    assert await ledger(hailuo) == [(1, "released", 280_000, 0)]
    assert len(video_tasks(e2e_sim)) == 1, "a final rejection is not retried"


async def test_a_clip_refused_by_the_safety_check_after_generation_fails_the_job_plainly(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    w = discord_world
    e2e_sim.faults.fail_next_tasks("contentPolicyViolation", message="Blocked by the content checks.")
    await video(fake_discord, w, {"prompt": "a storm over a city"})
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    note = await fake_discord.wait_for_message(w.channel, lambda m: "job #1 failed" in m.content, timeout=10)
    assert "content checks refused" in note.content, note.content
    [status] = status_messages(fake_discord, w.channel)
    assert status.content.startswith("❌ Failed") and "content checks refused" in status.content
    assert await ledger(hailuo) == [(1, "released", 280_000, 0)]
    assert result_messages(fake_discord, w.channel) == []


async def test_the_real_process_in_a_folder_without_config_runs_on_defaults_and_says_so(
    fake_discord: FakeDiscord, discord_world: DiscordWorld, tmp_path: Path
) -> None:
    """§7/§7b as an operator meets them: `DISCORD_TOKEN=... python -m bot --dry-run`, no config.toml here."""
    w = discord_world
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAILUO_") and k not in ("RUNWARE_API_KEY",)}
    env.update(
        PYTHONPATH=str(ROOT),  # the checkout, as run.sh uses it (an installed package works the same)
        DISCORD_TOKEN=fake_discord.token,
        HAILUO_DISCORD__API_BASE=fake_discord.api_base,
        HAILUO_DISCORD__DEV_GUILD_IDS="[1000]",
        HAILUO_WEBHOOK__LISTEN=f"127.0.0.1:{free_port()}",
        HAILUO_RUNWARE__POLL_INTERVAL="0.2",
        HAILUO_RUNWARE__DRY_RUN_PROCESSING_SECONDS="0.2",
    )
    env.pop("WEBHOOK_SECRET", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--dry-run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    changed = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode(errors="replace").rstrip("\n"))
            changed.set()
        changed.set()

    async def wait_for_line(predicate: Callable[[str], bool]) -> None:
        async with asyncio.timeout(60):  # a guard against a hang, not a speed check
            while not any(predicate(line) for line in lines):
                assert not reader.done(), "\n".join(lines)
                changed.clear()
                await changed.wait()

    reader = asyncio.create_task(read())
    try:
        await wait_for_line(lambda line: "ready as" in line)
        h = await fake_discord.send_command("video", {"prompt": "a paper boat"}, user=w.member, channel=w.channel)
        await h.wait_deferred(15)
        [ack] = await h.wait_followups(1, timeout=15)
        assert "Job #1" in ack.content and "DRY RUN" in ack.content and ack.ephemeral
        clip = await fake_discord.wait_for_message(w.channel, lambda m: bool(m.attachments), timeout=30)
        assert clip.content.startswith("🧪 DRY RUN")
        await fake_discord.wait_until(  # once the clip is posted, the status message goes (one message per job)
            lambda: not status_messages(fake_discord, w.channel), 15, "the job done"
        )
        # Discord goes away: discord.py retries; each retry is one warning line, not a traceback.
        await fake_discord.close()
        await wait_for_line(lambda line: "lost the connection to Discord" in line)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        await reader
    output = "\n".join(lines)
    assert code == 0, output
    assert "configuration: built-in defaults (no config.toml found)" in lines[0], output
    assert any("ready as" in line and "DRY RUN" in line for line in lines), output
    assert any("DRY RUN: using the built-in Runware simulator" in line for line in lines), output
    assert "shut down cleanly" in lines[-1], output
    assert "Traceback" not in output and " ERROR " not in output, output
    assert fake_discord.token not in output
    assert (tmp_path / "data" / "hailuo-bot.sqlite3").is_file(), "the default database path, under the folder"
    assert fake_discord.violations == []


async def test_the_ledger_settles_to_the_cost_runware_reports_and_the_post_shows_it(
    hailuo: LoopbackBot, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    """§3.7/§3.8: the estimate ($0.28 from [pricing]) is reserved; the clip's actual cost is shown and charged."""
    w = discord_world
    e2e_sim.costs[(1366, 768, 6)] = 0.3125
    _, ack = await video(fake_discord, w, {"prompt": "a red fox in fresh snow", "variations": 2})
    assert "$0.56 reserved" in ack.content, ack.content
    assert await ledger(hailuo) == [(1, "held", 560_000, 0)]
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    post = await fake_discord.wait_for_message(w.channel, lambda m: len(m.attachments) == 2, timeout=10)
    assert post.content.count("$0.3125") == 2 and "Total: $0.625" in post.content, post.content
    await fake_discord.wait_until(lambda: not status_messages(fake_discord, w.channel), 10, "done")
    assert await ledger(hailuo) == [(1, "settled", 560_000, 625_000)]
    h = await fake_discord.send_command("usage", {}, user=w.member, channel=w.channel)
    [usage] = await h.wait_followups(1)
    assert "$0.625 spent" in usage.content and "reserved" not in usage.content.split("\n", 1)[1], usage.content
