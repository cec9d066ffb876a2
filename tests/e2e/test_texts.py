"""What members and moderators read: every text the bot sends, checked for plain words and Discord's limits.

Each test drives the real bot through a journey and then checks ALL the texts it sent (message contents, edits,
interaction answers, DMs, thread names, the Remix modal): no internals (tracebacks, reprs, raw Runware codes),
money as $0.28, times as Discord timestamps, within 2000 characters, and pinging nobody but the requester.
Set PRINT_BOT_TEXTS=1 to print every text (pytest -s) for a read-through.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import pytest

from bot.core.models import Period, Scope
from bot.runware.errors import ErrorKind, RunwareError, RunwareUnavailable
from bot.simulator.server import RunwareSimulator
from bot.ui.texts_errors import runware_text
from tests.e2e.conftest import BotFactory, LoopbackBot
from tests.e2e.video_support import (
    assert_pings_only,
    bot_messages,
    png_bytes,
    result_messages,
    results_after_delivery,
    status_messages,
    video_tasks,
)
from tests.fakes.discord import FakeDiscord, FakeMember, FakeMessage, InteractionHandle
from tests.fakes.discord.models import FakeChannel, iter_components
from tests.fakes.discord.world import DiscordWorld

MIB = 1024 * 1024
CONTENT_MAX = 2000
DESCRIPTION_MAX = 100
MODAL_TITLE_MAX = 45
INPUT_LABEL_MAX = 45
THREAD_NAME_MAX = 100

#: Runware error codes the journeys provoke: none may reach a member as such.
RAW_CODES = ("insufficientCredits", "unsupportedParameter", "generationFailed", "invalidFrameImages", "timeoutProvider")
#: Things that only a program should read.
INTERNALS = (
    "Traceback",
    "Error(",
    "Exception",
    "{'",
    '{"',
    "object at 0x",
    "JobState.",
    "Scope.",
    "Period.",
    "SafetyMode.",
    "Payer.",
    "sim-key",
    "dry-run-key",
)
_NONE = re.compile(r"\bNone\b")
_MONEY = re.compile(r"\$\d+(?:\.\d+)?")
_GOOD_MONEY = re.compile(r"^\$\d+\.\d{2,6}$")
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
_URL = re.compile(r"https?://\S+")
_CODE_WORD = re.compile(r"`[^`]*`|\b[a-z]+[A-Z][A-Za-z]*\b")  # a backticked name is always explained in words
_CAPITAL_AFTER_COLON = re.compile(r"[a-z]: [A-Z][a-z]+ [a-z]")  # "did not start: The bot's..." reads as one sentence
_SPACING = re.compile(r"\S {2,}\S| [.,;:](?:\s|$)")
#: A refusal says what to do next: one of these words is in every one.
_NEXT_STEP = re.compile(
    r"\b(try|use|attach|choose|shorten|crop|scale|save|ask|moderator|start|resets|without|allowed|describe|change|"
    r"let|must)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sent:
    """One text the bot sent: where it went, what kind of text it is, and the text."""

    route: str
    kind: str  # content | thread name | modal title | input label
    text: str


def sent_texts(fake: FakeDiscord) -> list[Sent]:
    """Every text in the bot's requests to Discord, in order: contents, edits, callbacks, modals, thread names."""
    out: list[Sent] = []
    for r in fake.requests:
        if r.method not in ("POST", "PATCH") or not isinstance(r.json, dict):
            continue
        body: dict[str, Any] = r.json
        route = r.route
        if route.endswith("/callback"):
            data = body.get("data") or {}
            if body.get("type") == 9:  # a modal
                out.append(Sent(route, "modal title", str(data.get("title", ""))))
                for c in iter_components(data.get("components") or []):
                    if "label" in c and c.get("type") in (4, 18):
                        out.append(Sent(route, "input label", str(c["label"])))
                continue
            body = data
        if route == "POST /channels/{channel_id}/threads" and "name" in body:
            out.append(Sent(route, "thread name", str(body["name"])))
        if isinstance(body.get("content"), str) and body["content"]:
            out.append(Sent(route, "content", body["content"]))
    return out


def problems_of(sent: Sent) -> list[str]:
    """What is wrong with one text, in words (empty when it is fine)."""
    text, found = sent.text, []
    limit = {"thread name": THREAD_NAME_MAX, "modal title": MODAL_TITLE_MAX, "input label": INPUT_LABEL_MAX}
    if len(text) > limit.get(sent.kind, CONTENT_MAX):
        found.append(f"{len(text)} characters")
    found += [f"shows {word!r}" for word in INTERNALS if word in text]
    if _NONE.search(text):
        found.append("shows 'None'")
    plain = _URL.sub("", text)
    found += [f"raw Runware code {code}" for code in RAW_CODES if code in plain]
    found += [f"a program's word {w!r}" for w in _CODE_WORD.findall(plain) if not w.startswith("`")]
    if sent.kind == "content":
        if plain[:1].islower():
            found.append("starts in lower case")
        if m := _CAPITAL_AFTER_COLON.search(plain):
            found.append(f"a capital after a colon: {m.group()!r}")
        if m := _SPACING.search(plain):
            found.append(f"odd spacing: {m.group()!r}")
    found += [f"money as {m!r}" for m in _MONEY.findall(plain) if not _GOOD_MONEY.match(m)]
    if _CLOCK.search(plain):
        found.append("a clock time instead of a Discord timestamp")
    return found


def assert_plain(fake: FakeDiscord, *, prompts: tuple[str, ...] = ()) -> list[Sent]:
    """Check every text the bot sent so far; quoted member prompts are left out of the word checks."""
    sent = sent_texts(fake)
    assert sent, "the journey sent nothing"
    if os.environ.get("PRINT_BOT_TEXTS"):
        for s in sent:
            print(f"\n----- {s.kind} · {s.route} ({len(s.text)})\n{s.text}")
    bad = []
    for s in sent:
        checked = s
        for p in prompts:
            checked = Sent(s.route, s.kind, checked.text.replace(p, ""))
        if problems := problems_of(checked):
            bad.append((problems, s.text))
    assert bad == [], bad
    return sent


def assert_no_pings_but(fake: FakeDiscord, *user_ids: int) -> None:
    assert_pings_only(fake, *user_ids)
    for m in bot_messages(fake):
        if m.ephemeral:
            assert m.pinged_user_ids == [], (m.id, m.content)


async def answer_of(h: InteractionHandle) -> FakeMessage:
    """The one ephemeral answer to an interaction (after an ephemeral deferral)."""
    await h.wait_deferred()
    [answer] = await h.wait_followups(1, timeout=10)
    assert answer.ephemeral, answer.content
    return answer


async def ask(fake: FakeDiscord, name: str, options: dict[str, Any], *, user: FakeMember, channel: FakeChannel) -> str:
    return (await answer_of(await fake.send_command(name, options, user=user, channel=channel))).content


def assert_says_what_next(refusals: list[str]) -> None:
    """Every refusal says what to do about it."""
    assert refusals
    missing = [text for text in refusals if not _NEXT_STEP.search(text)]
    assert missing == [], missing


# -- a member's journey ----------------------------------------------------------------------------------------------


async def test_a_members_journey_reads_plainly(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot(runware={"ttl": 3600, "poll_interval": 3600})
    alice, carol = w.member, fake.add_member(w.guild, "carol")
    refusals: list[str] = []

    async def video(options: dict[str, Any], *, user: FakeMember = alice, channel: FakeChannel = w.channel) -> str:
        return await ask(fake, "video", options, user=user, channel=channel)

    async def refused(options: dict[str, Any], words: str, **where: Any) -> None:
        text = await video(options, **where)
        assert words in text and "is on its way" not in text, text
        refusals.append(text)

    async def refused_click(message: FakeMessage, custom_id: str, user: FakeMember, words: str) -> None:
        text = (await answer_of(await fake.click(message, custom_id, user=user))).content
        assert words in text, text
        refusals.append(text)

    async def finish_last() -> None:
        e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
        await bot.engine.tracker.sweep_once()

    assert "Start one with /video" in await ask(fake, "jobs", {}, user=alice, channel=w.channel)

    # A clip made, rerolled, remixed (the remix too large to attach: a link that expires), deleted.
    assert (await video({"prompt": "a lighthouse in a storm"})).startswith("Job #1 is on its way")
    await finish_last()
    [post] = result_messages(fake, w.channel)
    await results_after_delivery(bot, 1)
    reroll = await answer_of(await fake.click(post, "hailuo:reroll:1", user=alice))
    assert reroll.content.startswith("Job #2 is on its way")
    await finish_last()
    h = await fake.click(post, "hailuo:remix:1", user=alice)
    await h.wait_modal()
    e2e_sim.faults.oversized_clip_bytes = 11 * MIB
    remix = await answer_of(await fake.submit_modal(handle=h, values={"prompt": "a lighthouse in the sun"}))
    assert remix.content.startswith("Job #3 is on its way")
    await finish_last()
    e2e_sim.faults.oversized_clip_bytes = 0
    await results_after_delivery(bot, 3)
    await refused_click(post, "hailuo:delete:1", carol, "Only the member who asked")
    deleted = await answer_of(await fake.click(post, "hailuo:delete:1", user=alice))
    assert deleted.content == "Deleted 1 message of job #1."

    # Two variations; a cancelled job; a failed generation; tasks Runware refuses.
    await video({"prompt": "two paper boats", "variations": 2})
    await finish_last()
    await video({"prompt": "a snail racing a leaf"})
    status = status_messages(fake, w.channel)[-1]
    await refused_click(status, "hailuo:cancel:5", carol, "Only the member who asked")
    cancelled = (await answer_of(await fake.click(status, "hailuo:cancel:5", user=alice))).content
    assert cancelled.startswith("Job #5 is cancelled") and "$0.28" in cancelled
    e2e_sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await video({"prompt": "an impossible shape"})
    await finish_last()
    failed = await fake.wait_for_message(w.channel, lambda m: "job #6 failed" in m.content, timeout=10)
    refusals.append(failed.content)
    e2e_sim.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    await refused({"prompt": "a comet over the desert"}, "Job #7 did not start. The bot's Runware account")
    e2e_sim.faults.reject_next_submits("unsupportedParameter", 1, http_status=400)
    await refused({"prompt": "a comet over the sea"}, "bot bug")
    e2e_sim.faults.reject_next_submits("invalidPositivePrompt", 1, http_status=400)
    await refused({"prompt": "a comet over the hills"}, "refused this request as invalid")
    e2e_sim.faults.accept_last_frame = False
    first = fake.add_attachment("a.png", png_bytes(color=(1, 2, 3)))
    last = fake.add_attachment("b.png", png_bytes(color=(3, 2, 1)))
    await refused({"prompt": "a door opening", "first_frame": first, "last_frame": last}, "without last_frame")

    # Bad input, each said plainly, with what to change.
    bad: list[tuple[dict[str, Any], str]] = [
        ({"prompt": "a"}, "too short"),
        ({"prompt": "   "}, "empty"),
        ({"prompt": "x" * 2001}, "too long"),
        ({"prompt": "a cat", "first_frame": fake.add_attachment("notes.png", b"just some text")}, '"notes.png"'),
        ({"prompt": "a cat", "last_frame": fake.add_attachment("huge.png", bytes(11 * MIB))}, '"huge.png" is 11'),
        ({"prompt": "a cat", "first_frame": fake.add_attachment("cut.png", png_bytes()[:300])}, '"cut.png"'),
        ({"prompt": "a cat", "first_frame": fake.add_attachment("tiny.png", png_bytes(10, 10))}, "10×10"),
        ({"prompt": "a cat", "first_frame": fake.add_attachment("wide.png", png_bytes(1200, 300))}, "aspect ratio"),
        ({"prompt": "a cat", "resolution": "1080p", "duration": 10}, "1080p: 6 s"),
        ({"prompt": "a cat", "variations": 5}, "between 1 and 4"),
    ]
    for options, words in bad:
        await refused(options, words)

    # Spend, jobs, and someone else's usage.
    assert (await ask(fake, "usage", {}, user=alice, channel=w.channel)).startswith("Your usage:")
    text = await ask(fake, "usage", {"member": carol}, user=alice, channel=w.channel)
    assert "Only moderators" in text
    refusals.append(text)
    jobs = await ask(fake, "jobs", {}, user=alice, channel=w.channel)
    assert jobs.startswith("Your recent video jobs:") and " done · " in jobs and " cancelled · " in jobs

    # Limits and caps: over a limit, a blocked member, too many unfinished jobs, a channel not allowed, a pause.
    await bot.engine.guilds.set_limit(1000, 0, Scope.MEMBER, carol.user.id, Period.DAY, 100_000)
    await refused({"prompt": "a red balloon"}, "would go over", user=carol)
    await bot.engine.guilds.set_limit(1000, 0, Scope.MEMBER, carol.user.id, Period.DAY, 0)
    await refused({"prompt": "a red balloon"}, "is $0.00", user=carol)
    await bot.engine.guilds.update(1000, 0, concurrent_per_member=1)
    await video({"prompt": "a slow river"}, user=w.moderator)
    await refused({"prompt": "a fast river"}, "unfinished", user=w.moderator)
    await bot.engine.guilds.update(1000, 0, concurrent_per_member=2)
    studio = fake.add_channel(w.guild, "studio")
    await bot.engine.guilds.set_channel(1000, studio.id, 0, allowed=True)
    await refused({"prompt": "a quiet lake"}, "can't be used in this channel")
    await bot.engine.guilds.update(1000, 0, paused=True)
    await refused({"prompt": "a quiet lake"}, "paused", channel=studio)
    await bot.engine.guilds.update(1000, 0, paused=False)

    # A channel closed to the bot once the job runs: the clip arrives by DM.
    await video({"prompt": "a kite above the cliffs"}, channel=studio)
    fake.forbid_posting(studio)
    await finish_last()
    await fake.wait_until(lambda: fake.dm_channel(alice) is not None, timeout=10, what="a DM")

    sent = assert_plain(fake, prompts=("a lighthouse in a storm", "a lighthouse in the sun", "x" * 2001))
    assert_no_pings_but(fake, alice.user.id)
    assert_says_what_next(refusals)
    contents = [s.text for s in sent if s.kind == "content"]
    assert any("Links expire <t:" in t for t in contents), "a link says when it expires, as a Discord timestamp"
    assert any("resets <t:" in t for t in contents if "would go over" in t), "an over-limit refusal says when"
    assert any(t.startswith("I couldn't post in the channel where you asked, so here is your clip.") for t in contents)
    [modal_title] = [s.text for s in sent if s.kind == "modal title"]
    assert modal_title == "Remix this clip"


async def test_an_expired_job_and_an_unexpected_error_read_plainly(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot(runware={"max_wait": 0.001, "poll_interval": 3600})
    await ask(fake, "video", {"prompt": "a very slow sunset"}, user=w.member, channel=w.channel)
    closed = fake.add_channel(w.guild, "closed")
    fake.forbid_posting(closed)  # no status message there: the requester hears by DM
    ack = await ask(fake, "video", {"prompt": "a very slow sunrise"}, user=w.member, channel=closed)
    assert ack.startswith("Job #2 is on its way") and "Follow it here" not in ack
    await bot.engine.tracker.sweep_once()
    note = await fake.wait_for_message(w.channel, lambda m: "job #1 expired" in m.content)
    assert note.content.endswith("You were not charged; try again with /video.")
    dm = fake.dm_channel(w.member)
    assert dm is not None
    await fake.wait_for_message(dm, lambda m: m.content.startswith("Your video job #2 expired. "))

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away: {'secret': 'x'}")

    real = bot.engine.jobs.recent_for_member
    bot.engine.jobs.recent_for_member = broken  # type: ignore[method-assign]
    try:
        text = await ask(fake, "jobs", {}, user=w.member, channel=w.channel)
    finally:
        bot.engine.jobs.recent_for_member = real  # type: ignore[method-assign]
    assert text.startswith("Something went wrong")
    assert_plain(fake)
    assert_no_pings_but(fake, w.member.user.id)


# -- a moderator's journey -------------------------------------------------------------------------------------------


async def test_a_moderators_journey_reads_plainly(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    fake, w = fake_discord, discord_world
    helpers = fake.add_role(w.guild, "Helpers")
    carol = fake.add_member(w.guild, "carol", roles=[helpers])
    studio = fake.add_channel(w.guild, "studio")
    pool = fake.add_channel(w.guild, "brainstorm")
    bot = await make_bot(runware={"poll_interval": 3600})
    mod, alice = w.moderator, w.member

    steps: list[tuple[str, dict[str, Any]]] = [
        ("limits show", {}),
        ("limits set", {"period": "day", "amount": 1.5, "member": alice}),
        ("limits set", {"period": "day", "amount": 0, "member": carol}),
        ("limits set", {"period": "week", "amount": 3, "role": helpers}),
        ("limits set", {"period": "month", "amount": 10, "channel": studio}),
        ("limits set", {"period": "month", "amount": 50}),
        ("limits set", {"period": "day", "amount": 1, "member": alice, "role": helpers}),
        ("limits show", {"member": alice}),
        ("limits show", {"role": helpers}),
        ("limits show", {"channel": studio}),
        ("limits show", {}),
        ("limits clear", {"period": "day", "member": alice}),
        ("limits clear", {"period": "week", "channel": studio}),
        ("videoadmin defaults", {}),
        ("videoadmin defaults", {"resolution": "1080p", "duration": 10}),
        ("videoadmin defaults", {"duration": 10, "variations_cap": 6, "prompt_optimizer": True}),
        ("videoadmin defaults", {"duration": 10}),
        ("videoadmin channel", {"channel": studio}),
        ("videoadmin channel", {"channel": studio, "allowed": True, "threads": True}),
        ("videoadmin channel", {"channel": pool, "allowed": True, "pool": True}),
        ("videoadmin channel", {"channel": w.channel}),
        ("videoadmin safety", {"mode": "fast"}),
        ("videoadmin concurrency", {"per_member": 5}),
        ("videoadmin moderator-role", {"role": helpers}),
        ("videoadmin pause", {}),
        ("videoadmin resume", {}),
        ("videoadmin blocklist list", {}),
        ("videoadmin blocklist add", {"phrase": "Tuba"}),
        ("videoadmin blocklist add", {"phrase": "tuba"}),
        ("videoadmin blocklist add", {"phrase": "red _panda_"}),
        ("videoadmin blocklist list", {}),
        ("videoadmin blocklist remove", {"phrase": "red _panda_"}),
        ("videoadmin blocklist remove", {"phrase": "red _panda_"}),
        ("videoadmin audit", {}),
        ("videoadmin audit", {"member": carol, "count": 5}),
    ]
    for name, options in steps:
        await ask(fake, name, options, user=mod, channel=w.channel)
    refused = await ask(fake, "video", {"prompt": "a TUBA in the fog"}, user=alice, channel=studio)
    assert refused == "This server does not allow “Tuba” in prompts."
    # Jobs in a thread channel and a pool, then the report and /usage as the pool and for a member.
    await ask(fake, "video", {"prompt": "a @here thread about #general ideas"}, user=alice, channel=studio)
    await ask(fake, "video", {"prompt": "a team idea"}, user=alice, channel=pool)
    for size in list(e2e_sim.costs):  # Runware charges more than the table: the report says so
        e2e_sim.costs[size] *= 1.5
    e2e_sim.finish(video_tasks(e2e_sim)[0]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    for period in ("day", "week", "month"):
        await ask(fake, "limits report", {"period": period}, user=mod, channel=w.channel)
    await ask(fake, "usage", {}, user=alice, channel=pool)
    await ask(fake, "usage", {"member": alice}, user=carol, channel=w.channel)
    # Refusals: a plain member, and the moderator role where only Manage Server will do.
    plain = fake.add_member(w.guild, "dave")
    assert "You need" in await ask(fake, "limits show", {}, user=plain, channel=w.channel)
    assert "You need" in await ask(fake, "videoadmin pause", {}, user=plain, channel=w.channel)
    text = await ask(fake, "videoadmin moderator-role", {"role": helpers}, user=carol, channel=w.channel)
    assert "Manage Server" in text
    await ask(fake, "videoadmin moderator-role", {"role": w.guild.roles[w.guild.id]}, user=mod, channel=w.channel)

    sent = [s.text for s in assert_plain(fake, prompts=("a @here thread about #general ideas",))]
    assert_no_pings_but(fake, alice.user.id)
    assert any(f"<@{carol.user.id}>'s daily limit**: $0.00, so it **blocks new jobs**" in t for t in sent)
    assert any(re.search(r"Video spend today\*\* \(\d{4}-\d{2}-\d{2}, UTC\)", t) for t in sent), "one day, once"
    assert any("**Prices that differ from what Runware charged**" in t and "+50 %" in t for t in sent)
    assert "a here thread about general ideas" in sent, "the job's thread is named after its prompt, without pings"


# -- dry run -----------------------------------------------------------------------------------------------------------


async def test_a_dry_run_says_so_on_everything_it_posts(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld
) -> None:
    fake, w = fake_discord, discord_world
    bot = await make_bot(dry_run=True, runware={"dry_run_processing_seconds": 3600, "poll_interval": 3600})
    sim = bot.engine.simulator
    assert sim is not None
    ack = await ask(fake, "video", {"prompt": "a tin robot waving"}, user=w.member, channel=w.channel)
    assert ack.startswith("🧪 DRY RUN · Job #1 is on its way (simulated, nothing billed)"), ack
    sim.finish(video_tasks(sim)[-1]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    await fake.wait_until(lambda: bool(result_messages(fake, w.channel)), timeout=10, what="the clip")
    sim.faults.fail_next_tasks("generationFailed", message="The model could not render this.")
    await ask(fake, "video", {"prompt": "a tin robot falling"}, user=w.member, channel=w.channel)
    sim.finish(video_tasks(sim)[-1]["taskUUID"])
    await bot.engine.tracker.sweep_once()
    await fake.wait_for_message(w.channel, lambda m: "job #2 failed" in m.content, timeout=10)
    assert "DRY RUN" in await ask(fake, "usage", {}, user=w.member, channel=w.channel)
    assert "dry run" in await ask(fake, "jobs", {}, user=w.member, channel=w.channel)
    assert "DRY RUN" in await ask(fake, "limits report", {}, user=w.moderator, channel=w.channel)

    sent = assert_plain(fake)
    public = [m for m in bot_messages(fake) if not m.ephemeral]
    assert public and all(m.content.startswith("🧪 DRY RUN") for m in public), [m.content for m in public]
    assert any("DRY RUN" in s.text for s in sent if s.route.startswith("PATCH /channels"))


# -- texts with no easy journey --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        *(RunwareError(kind, "someCode", "Something failed.") for kind in ErrorKind),
        RunwareError(ErrorKind.INVALID_REQUEST, "unsupportedParameter", "x", parameter="fps"),
        RunwareError(ErrorKind.INVALID_REQUEST, "invalidDuration", "x", parameter="duration", allowed_values=[6, 10]),
        RunwareError(ErrorKind.INVALID_REQUEST, "invalidWidth", "x", parameter="width", min_value=256, max_value=1920),
        RunwareError(ErrorKind.INVALID_REQUEST, "invalidOutputQuality", "x", parameter="outputQuality", max_value=99),
        RunwareError(ErrorKind.PROVIDER_FAILURE, "providerError", "x", parameter="inputs.frameImages"),
        RunwareUnavailable("timed out"),
    ],
    ids=lambda e: f"{e.kind}-{e.code}-{e.parameter}",
)
def test_every_runware_failure_reads_as_plain_words_with_a_next_step(error: RunwareError) -> None:
    text = runware_text(error)
    assert problems_of(Sent("user_message", "content", text)) == [], text
    assert "someCode" not in text and "Something failed" not in text, text
    assert text[0].isupper() and text.endswith("."), text
    assert len(text) <= 300, text


# -- the command list ------------------------------------------------------------------------------------------------


async def test_command_and_option_descriptions_are_short_and_plain(
    hailuo: LoopbackBot, fake_discord: FakeDiscord
) -> None:
    described: list[tuple[str, str]] = []

    def walk(prefix: str, items: list[dict[str, Any]]) -> None:
        for item in items:
            name = f"{prefix} {item['name']}".strip()
            described.append((name, str(item.get("description", ""))))
            for choice in item.get("choices") or []:
                described.append((f"{name}={choice['value']}", str(choice["name"])))
            walk(name, item.get("options") or [])

    walk("", [c for c in fake_discord.commands[1000] if c.get("type", 1) == 1])  # message commands have none
    if os.environ.get("PRINT_BOT_TEXTS"):
        for name, text in described:
            print(f"{name:45} {len(text):3} {text}")
    assert len(described) > 40
    for name, text in described:
        assert 1 <= len(text) <= DESCRIPTION_MAX, (name, text)
        assert text == text.strip() and not text.endswith("."), (name, text)
        if "=" not in name:  # choices are shown as typed (day, 768p, ...)
            assert not text[0].islower(), (name, text)


# -- members' features: Animate image, Extend, confirm before costly jobs, the usual time ------------------------------


async def test_animate_extend_and_confirm_read_plainly(
    make_bot: BotFactory, fake_discord: FakeDiscord, discord_world: DiscordWorld, e2e_sim: RunwareSimulator
) -> None:
    from datetime import timedelta

    from tests.fakes.discord.message_commands import post_as, send_message_command

    fake, w = fake_discord, discord_world
    e2e_sim.varied_clips = True
    bot = await make_bot(runware={"ttl": 3600}, limits={"concurrent_per_member": 10, "member_day_usd": 20.0})
    alice = w.member
    refusals: list[str] = []

    async def submitted(h: InteractionHandle, values: dict[str, str]) -> str:
        await h.wait_modal()
        return (await answer_of(await fake.submit_modal(handle=h, values=values))).content

    async def clicked(message: FakeMessage, custom_id: str) -> str:
        return (await answer_of(await fake.click(message, custom_id, user=alice))).content

    # Animate: a message without an image, then one with.
    words = await post_as(fake, alice, w.channel, "no picture here")
    h = await send_message_command(fake, "Animate image", words, user=alice)
    await h.wait_response()
    assert h.original is not None and h.original.content == "That message has no image to animate."
    posted = await post_as(fake, alice, w.channel, "", [("cat.png", png_bytes())])
    h = await send_message_command(fake, "Animate image", posted, user=alice)
    assert (await submitted(h, {"prompt": "the cat yawns"})).startswith("Job #1 is on its way")
    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    post = await fake.wait_for_message(w.channel, lambda m: "hailuo:extend:1" in m.custom_ids(), timeout=10)

    # Extend: the continuation (its post joins both), then a clip whose link has expired.
    h = await fake.click(post, "hailuo:extend:1", user=alice)
    assert (await submitted(h, {"prompt": "the cat stretches"})).startswith("Job #2 is on its way")
    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    await fake.wait_for_message(w.channel, lambda m: "hailuo:extend:2" in m.custom_ids(), timeout=15)
    await video_for(fake, w, {"prompt": "three cats", "variations": 3})
    e2e_sim.finish(video_tasks(e2e_sim)[-1]["taskUUID"])
    three = await fake.wait_for_message(w.channel, lambda m: "hailuo:extend:3" in m.custom_ids(), timeout=15)
    h = await fake.click(three, "hailuo:extend:3", user=alice)
    text = await submitted(h, {"prompt": "the cats sleep", "clip": "9"})
    assert text.startswith("Choose a clip number from 1 to 3")
    refusals.append(text)
    e2e_sim.advance(7200)
    h = await fake.click(post, "hailuo:extend:1", user=alice)
    text = await submitted(h, {"prompt": "the cat runs"})
    assert text.startswith("That clip is no longer available")
    refusals.append(text)

    # Confirm before costly jobs: the setting, an offer started, one cancelled, one expired, a double Start.
    text = await ask(fake, "videoadmin confirm-above", {"amount": 0.25}, user=w.moderator, channel=w.channel)
    assert "$0.25" in text
    offers = []
    for prompt in ("a costly dragon", "a costly phoenix", "a costly griffin"):
        offers.append(await answer_of(await fake.send_command("video", {"prompt": prompt}, user=alice)))
    assert all("Nothing is reserved until you press Start" in o.content for o in offers)
    ids = [o.custom_ids()[0].rsplit(":", 1)[1] for o in offers]
    assert "is on its way" in await clicked(offers[0], f"hailuo:offer-start:{ids[0]}")
    refusals.append(await clicked(offers[0], f"hailuo:offer-start:{ids[0]}"))
    assert (await clicked(offers[1], f"hailuo:offer-cancel:{ids[1]}")).startswith("Cancelled")
    bot.engine.offers.window = timedelta(0)
    expired_offer = await answer_of(await fake.send_command("video", {"prompt": "a costly kraken"}, user=alice))
    text = await clicked(expired_offer, f"hailuo:offer-start:{expired_offer.custom_ids()[0].rsplit(':', 1)[1]}")
    assert text.startswith("This offer expired")
    refusals.append(text)

    sent = assert_plain(fake, prompts=("the cat yawns", "the cat stretches", "three cats"))
    assert_no_pings_but(fake, alice.user.id)
    assert_says_what_next(refusals)
    titles = {s.text for s in sent if s.kind == "modal title"}
    assert titles == {"Animate image", "Extend this clip"}
    labels = {s.text for s in sent if s.kind == "input label"}
    assert labels == {"Prompt", "Which clip to extend (1–3)"}
    contents = [s.text for s in sent if s.kind == "content"]
    assert any("…-extended.mp4 plays both" in t for t in contents)


async def video_for(fake: FakeDiscord, w: DiscordWorld, options: dict[str, Any]) -> FakeMessage:
    return await answer_of(await fake.send_command("video", options, user=w.member, channel=w.channel))
