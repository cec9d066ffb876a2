"""Errors carry data and bot/ui words them: every code the core raises has words, failures survive the database,
and the words are exactly the ones members read before the data moved out of the core."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.errors import (
    ChannelNotAllowed,
    ConcurrencyLimited,
    Failure,
    FailureKind,
    InputError,
    JobRejected,
    OverLimit,
    UserFacingError,
)
from bot.core.models import JobState, Period, Scope
from bot.runware.errors import ErrorKind, RunwareError, RunwareUnavailable
from bot.ui import texts_errors
from bot.ui.texts_errors import error_text, failure_text, runware_text

ROOT = Path(__file__).resolve().parents[2]
AGNOSTIC = [ROOT / "bot" / part for part in ("core", "store", "runware", "simulator", "web")]
ERRORS = {"UserFacingError", "InputError", "NotAllowed", "Paused", "NotFound"}


def raised_codes() -> set[str]:
    """Every literal code passed to a UserFacingError class in the Discord-agnostic packages."""
    codes: set[str] = set()
    for folder in AGNOSTIC:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ERRORS:
                    first = node.args[0] if node.args else None
                    assert isinstance(first, ast.Constant) and isinstance(first.value, str), ast.unparse(node)
                    codes.add(first.value)
    return codes


def test_every_code_the_core_raises_has_words() -> None:
    codes = raised_codes()
    assert {"prompt_empty", "image_too_large", "guild_paused", "job_gone"} <= codes  # the scan sees them
    assert codes <= set(texts_errors._WORDS), codes - set(texts_errors._WORDS)


def test_the_core_never_passes_words() -> None:
    for folder in AGNOSTIC:
        for path in folder.rglob("*.py"):
            assert ".said(" not in path.read_text(encoding="utf-8"), path


def test_every_failure_kind_has_words() -> None:
    assert set(texts_errors._FAILURES) == set(FailureKind)


def test_a_failure_survives_the_database_and_reads_the_same() -> None:
    error = RunwareError(ErrorKind.INVALID_REQUEST, "invalidDuration", "x", parameter="duration", allowed_values=[6])
    failure = Failure(FailureKind.RUNWARE, error.to_data())
    back = Failure.load(failure.dump())
    assert back == failure
    assert (
        failure_text(back)
        == runware_text(error)
        == "Runware refused the duration (allowed: 6). Change it and try again."
    )
    timed_out = Failure.load(Failure(FailureKind.TIMED_OUT, {"max_wait": 1800.0}).dump())
    assert failure_text(timed_out) == (
        "The job did not finish within 30 minutes, so it was given up. You were not charged; try again with /video."
    )
    unavailable = Failure(FailureKind.RUNWARE, RunwareUnavailable("timed out").to_data())
    assert (
        failure_text(Failure.load(unavailable.dump())) == "Runware did not answer in time. Try again in a few minutes."
    )


@pytest.mark.parametrize(
    "stored", ["Runware refused the last frame", "{}", "[1, 2]", '{"failure": "nope", "data": {}}']
)
def test_a_reason_stored_as_words_by_an_older_version_reads_as_it_was(stored: str) -> None:
    assert failure_text(Failure.load(stored)) == stored


def test_over_limit_words_are_unchanged() -> None:
    resets = datetime(2025, 2, 1, tzinfo=UTC)
    err = OverLimit(
        scope=Scope.MEMBER,
        period=Period.DAY,
        is_default=True,
        limit_amount=2_000_000,
        left_micros=500_000,
        needed_micros=560_000,
        resets_at=resets,
    )
    assert error_text(err) == (
        "This job would go over your default daily limit: $0.50 left of $2.00, and it needs $0.56. "
        f"The limit resets <t:{int(resets.timestamp())}:R>."
    )
    blocked = OverLimit(
        scope=Scope.ROLE,
        period=Period.WEEK,
        is_default=False,
        limit_amount=0,
        left_micros=0,
        needed_micros=280_000,
        resets_at=resets,
    )
    assert (
        error_text(blocked)
        == "Your role's weekly limit is $0.00, so no jobs can be charged to it. Only a moderator can change that."
    )


def test_refusals_read_as_before() -> None:
    assert error_text(ConcurrencyLimited(running=1, cap=1)) == (
        "You already have 1 unfinished video job, and this server allows 1 at a time. Try again when one has finished."
    )
    assert error_text(ChannelNotAllowed([30, 10, 20])) == (
        "/video can't be used in this channel. Try one of these: <#10>, <#20>, <#30>."
    )
    assert error_text(InputError("already_finished", state=JobState.EXPIRED)) == (
        "This job is already expired; there is nothing to cancel."
    )
    assert error_text(JobRejected(Failure(FailureKind.SETUP))) == (
        "The job could not be set up in Discord. You were not charged."
    )
    assert error_text(InputError.said("Words from a cog.")) == "Words from a cog."
    assert error_text(UserFacingError("a_code_without_words")) == "The bot could not do that. Please try again."
