"""Logging set-up: formats, idempotence, quiet discord loggers, and secrets that never reach the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.logs import HumanFormatter, RedactingFilter, add_secret, redact, reset_logging, setup_logging
from bot.settings import LoggingSettings

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
RUNWARE_KEY = "rw-KEY-7f3a9c1e5b2d4f60"
WEBHOOK_SECRET = "hook/secret+with&odd=chars"
LATE_SECRET = "generated-later-0123456789"
ALL_SECRETS = (TOKEN, RUNWARE_KEY, WEBHOOK_SECRET, LATE_SECRET)

log = logging.getLogger("bot.core.tracker")


@pytest.fixture(autouse=True)
def _clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    reset_logging()
    root.setLevel(level)
    for name in ("discord.http", "discord.gateway"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _setup(json_lines: bool = False, file: str = "") -> io.StringIO:
    out = io.StringIO()
    cfg = LoggingSettings(level="DEBUG", json_lines=json_lines, file=file)
    setup_logging(cfg, secrets=[SecretStr(TOKEN), RUNWARE_KEY, SecretStr(WEBHOOK_SECRET), ""], stream=out)
    add_secret(LATE_SECRET)
    return out


def _emit_everything() -> None:
    log.info("token is %s", TOKEN)
    log.warning("key=%s url=https://bot.example/hooks/%s", RUNWARE_KEY, WEBHOOK_SECRET)
    log.info("webhook url https://bot.example/hooks/%s?s=%s", WEBHOOK_SECRET, "hook%2Fsecret%2Bwith%26odd%3Dchars")
    log.info("embedded in the message itself: " + LATE_SECRET)
    log.error("dict arg %s", {"apiKey": RUNWARE_KEY, "nested": [TOKEN]})
    try:
        raise RuntimeError(f"Runware said no to {RUNWARE_KEY} and {TOKEN}")
    except RuntimeError:
        log.exception("submit failed for %s", WEBHOOK_SECRET)
    try:
        secret_local = LATE_SECRET  # noqa: F841 - only here to be in the frame
        raise ValueError(LATE_SECRET)
    except ValueError:
        log.debug("with stack", exc_info=True, stack_info=True)


def _assert_clean(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text
    assert "hook%2Fsecret%2Bwith%26odd%3Dchars" not in text  # the URL-encoded form too


def test_human_format_and_redaction() -> None:
    out = _setup()
    _emit_everything()
    text = out.getvalue()
    _assert_clean(text)
    first = text.splitlines()[0]
    date, clock, level, logger, *rest = first.split(" ")
    assert (len(date), len(clock), level, logger) == (10, 8, "INFO", "bot.core.tracker:")
    assert " ".join(rest) == "token is ***"
    assert "key=*** url=https://bot.example/hooks/***" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: Runware said no to *** and ***" in text
    assert "Stack (most recent call last)" in text


def test_json_lines_and_redaction() -> None:
    out = _setup(json_lines=True)
    _emit_everything()
    text = out.getvalue()
    _assert_clean(text)
    docs = [json.loads(line) for line in text.splitlines()]
    assert len(docs) == 7
    assert set(docs[0]) == {"ts", "level", "logger", "msg"}
    assert docs[0]["msg"] == "token is ***"
    assert docs[0]["level"] == "INFO" and docs[0]["logger"] == "bot.core.tracker"
    assert docs[0]["ts"].endswith("Z") and docs[0]["ts"][10] == "T"
    failed = docs[5]
    assert failed["msg"] == "submit failed for ***"
    assert "RuntimeError: Runware said no to *** and ***" in failed["exc"]
    assert "stack" in docs[6] and "exc" in docs[6]


def test_rotating_file_gets_the_same_redacted_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "bot.log"
    out = _setup(file=str(path))
    _emit_everything()
    logging.getLogger().handlers[-1].flush()
    text = path.read_text(encoding="utf-8")
    _assert_clean(text)
    assert text == out.getvalue()


def test_setup_twice_does_not_duplicate_handlers() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    _setup()
    out = _setup()
    assert len(root.handlers) == before + 1
    log.info("once")
    assert out.getvalue().count("once") == 1


def test_discord_loggers_are_quiet_and_level_applies() -> None:
    out = io.StringIO()
    setup_logging(LoggingSettings(level="INFO"), stream=out)
    logging.getLogger("discord.http").info("rate limit bucket chatter")
    logging.getLogger("discord.gateway").info("heartbeat chatter")
    logging.getLogger("discord.http").warning("429 from discord")
    log.debug("debug hidden at INFO")
    log.info("info shown")
    text = out.getvalue()
    assert "chatter" not in text and "debug hidden" not in text
    assert "429 from discord" in text and "info shown" in text


def test_short_secrets_are_ignored_and_safety_nets_apply() -> None:
    out = io.StringIO()
    setup_logging(LoggingSettings(), secrets=["abc", "the"], stream=out)
    log.info("the abc of it; Authorization: Bearer sk-live-zzz; %s", "OTk5.not-a-token")
    other_token = "OTk5ODg3Nzc2NjY1NTU0NDQz.Gh1jK2.Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcl9iYXo"
    log.info("unregistered token %s api_key=plain-text-key-123", other_token)
    text = out.getvalue()
    assert "the abc of it; Authorization: Bearer ***;" in text
    assert "OTk5.not-a-token" in text  # short dotted words are not tokens
    assert other_token not in text and "unregistered token ***" in text
    assert "plain-text-key-123" not in text and "api_key=***" in text


def test_bad_format_args_still_log_redacted() -> None:
    _setup()
    record = log.makeRecord("bot.core.tracker", logging.INFO, __file__, 1, "two placeholders %s %s", (TOKEN,), None)
    assert RedactingFilter().filter(record)
    line = HumanFormatter().format(record)
    assert "two placeholders" in line
    _assert_clean(line)


def test_redact_function() -> None:
    add_secret("standalone-secret")
    assert redact("x standalone-secret y") == "x *** y"
    add_secret(None)
    add_secret(SecretStr(""))
    assert redact("nothing here") == "nothing here"
