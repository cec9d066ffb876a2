"""The texts members read: they fit Discord's 2000 characters without losing a clip line or a link."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.core.models import ClipResult, JobState, ResultState
from bot.ui.delivery import CLIP_LINES_BUDGET
from bot.ui.texts import DISCORD_LIMIT, clip_line, job_line, quote, quote_within, result_message, status_message
from cogs.video._flow import thread_name
from tests.helpers import JOB_TIME, make_job

NOW = JOB_TIME
job = make_job


def clip(n: int, url: str | None = None) -> ClipResult:
    return ClipResult(
        id=n,
        job_id=7,
        video_uuid=f"uuid-{n}",
        video_url=url or f"https://vm.runware.ai/video/ws/5/vi/{n:08d}-aaaa-4bbb-8ccc-dddddddddddd.mp4",
        seed=2_000_000_000 + n,
        cost_micros=280_000,
        state=ResultState.DELIVERING,
        message_id=None,
        created_at=NOW,
    )


def test_one_clip_names_the_requester_quotes_the_prompt_and_shows_resolution_duration_seed_and_cost() -> None:
    text = result_message(job(), [(1, clip(1), None)], total=1)
    assert text.splitlines() == [
        "<@3> your clip is ready",
        "> a red fox in fresh snow",
        "**#1** · 768p · 6 s · seed 2000000001 · $0.28",
    ]


def test_as_many_links_as_delivery_packs_and_a_long_prompt_fit_without_losing_a_link() -> None:
    j = job(prompt="word " * 500, variations=12, cost_micros=12 * 280_000, dry_run=True)
    numbered = [(n, clip(n), "too_large") for n in range(1, 10)]
    lines = [clip_line(j, r, n, link="too_large") for n, r, _ in numbered]
    assert sum(len(line) + 1 for line in lines) <= CLIP_LINES_BUDGET  # what delivery puts in one message
    text = result_message(j, numbered, total=12, last=True, ttl_expires=NOW + timedelta(hours=1))
    assert len(text) <= DISCORD_LIMIT and "…\n**#1**" in text, "only the prompt is shortened"
    assert all(line in text for line in lines)
    assert text.splitlines()[0] == "🧪 DRY RUN · <@3> your clips are ready (clips 1–9 of 12)"
    assert "> word word" in text, "the prompt is still quoted, shorter"
    assert "Links expire <t:" in text and text.endswith("Total: $3.36")


def test_a_partial_redelivery_names_the_clips_it_holds() -> None:
    text = result_message(job(variations=12), [(3, clip(3), None), (7, clip(7), None)], total=12)
    assert "(clips 3, 7 of 12)" in text.splitlines()[0]
    assert "(clip 5 of 12)" in result_message(job(variations=12), [(5, clip(5), None)], total=12)


@given(st.text(max_size=3000), st.integers(min_value=0, max_value=700))
def test_quote_within_never_exceeds_its_budget(text: str, budget: int) -> None:
    quoted = quote_within(text, budget)
    assert len(quoted) <= budget
    assert all(line.startswith(">") for line in quoted.splitlines())


def test_quote_marks_every_line() -> None:
    assert quote("one\n\ntwo") == "> one\n>\n> two"


def test_job_line_is_one_line_of_status_cost_and_prompt_whatever_the_prompt() -> None:
    line = job_line(job(prompt="first line\nsecond   line"), "https://discord.com/channels/1/2/3")
    head, prompt = line.split("\n")
    assert "**#7** done" in head and "$0.28" in head and "[open](https://discord.com/channels/1/2/3)" in head
    assert prompt.strip() == "“first line second line”"
    failed = job_line(job(state=JobState.FAILED, cost_micros=None), None)
    assert "not charged" in failed and "open" not in failed


def test_status_message_shows_phase_job_prompt_and_elapsed_time() -> None:
    j = job(frame_count=2)
    text = status_message(j, "generating", progress=40)
    started = int((j.submitted_at or j.created_at).timestamp())
    assert text.splitlines() == [
        "🎬 Generating · job #7 for <@3>",
        "> a red fox in fresh snow",
        "1 × 768p · 6 s · 2 frame images",
        f"Started <t:{started}:R> · 40%",  # Discord keeps the relative time counting between edits
    ]


def test_thread_names_drop_mention_marks_and_stay_short() -> None:
    assert thread_name("@everyone look at #general") == "everyone look at general"
    assert len(thread_name("long " * 100)) <= 90
    assert thread_name("@@@ ###") == "video job"
