"""Logging set-up: one stdout handler (plus an optional rotating file), human or JSON lines, secrets masked.

Redaction happens on the handlers, so it covers records from every logger that propagates to the root: a
filter rewrites the record (message with its args, exception text, stack) before any formatter sees it, and
each formatter masks its final line again, so a secret never leaves through a field the filter did not know.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from bot.settings import LoggingSettings

MASK = "***"
MIN_SECRET_LENGTH = 6  #: shorter values would mask ordinary words; they are ignored
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
FILE_MAX_BYTES = 10 * 1024 * 1024
FILE_BACKUPS = 5
QUIET_LOGGERS = ("discord.http", "discord.gateway")
RECONNECT_MSG = "Attempting a reconnect"  #: discord.Client.connect's message before each retry
#: The same from the sharded client (bot.app.HailuoBot is an AutoShardedBot): per shard, and at the first connect.
RECONNECT_MESSAGES = {
    "discord.client": (RECONNECT_MSG,),
    "discord.shard": (RECONNECT_MSG, "Failed to connect for shard_id"),
}

# Safety nets for secrets nobody registered: a Discord bot token (three base64url segments joined by dots),
# an HTTP bearer credential, and an apiKey/api_key value (Runware's authentication task carries one).
_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{20,}")
_BEARER_RE = re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+")
_API_KEY_RE = re.compile(r"(?i)(\bapi[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s'\",;}&]+")


class Redactor:
    """Masks registered secret values and secret-looking strings in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str | SecretStr | None) -> None:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _TOKEN_RE.sub(MASK, text)
        text = _BEARER_RE.sub(r"\g<1>" + MASK, text)
        return _API_KEY_RE.sub(r"\g<1>" + MASK, text)


_REDACTOR = Redactor()
_HANDLER_FLAG = "_hailuo_handler"


def add_secret(value: str | SecretStr | None) -> None:
    """Mask this value in every log line from now on (e.g. a webhook secret generated at start-up)."""
    _REDACTOR.add(value)


def redact(text: str) -> str:
    """Return `text` with every known secret and secret-looking string masked."""
    return _REDACTOR(text)


class RedactingFilter(logging.Filter):
    """Rewrite a record in place so its message, exception and stack carry no secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line (or leak its args unmasked)
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class ReconnectFilter(logging.Filter):
    """discord.py logs each gateway reconnect attempt at ERROR with a full traceback (one per retry while Discord
    is unreachable). It is an expected, self-healing event: make it one WARNING line naming the cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        starts = RECONNECT_MESSAGES.get(record.name)
        if starts is None or not record.exc_info or not str(record.msg).startswith(starts):
            return True
        exc = record.exc_info[1]
        cause = f"{type(exc).__name__}: {exc}" if exc is not None and str(exc) else type(exc).__name__
        record.msg = f"{record.getMessage()}: lost the connection to Discord ({cause})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class HumanFormatter(logging.Formatter):
    """`2026-11-25 13:00:00 INFO bot.core.tracker: job=12 task=... message`, in UTC."""

    def __init__(self) -> None:
        super().__init__(HUMAN_FORMAT, DATE_FORMAT)
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and exc / stack when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        doc: dict[str, str] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return redact(json.dumps(doc, ensure_ascii=False))


def setup_logging(
    cfg: LoggingSettings,
    *,
    secrets: Iterable[str | SecretStr | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Install the handlers on the root logger; calling again replaces them instead of adding more."""
    for secret in secrets:
        add_secret(secret)
    root = logging.getLogger()
    _remove_handlers(root)
    formatter: logging.Formatter = JsonFormatter() if cfg.json_lines else HumanFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream if stream is not None else sys.stdout)]
    if cfg.file:
        path = Path(cfg.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=FILE_MAX_BYTES, backupCount=FILE_BACKUPS, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ReconnectFilter())  # before redaction, which renders the traceback
        handler.addFilter(RedactingFilter())
        setattr(handler, _HANDLER_FLAG, True)
        root.addHandler(handler)
    root.setLevel(cfg.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def reset_logging() -> None:
    """Remove the handlers setup_logging installed and forget every secret (for tests)."""
    _remove_handlers(logging.getLogger())
    _REDACTOR.clear()


def _remove_handlers(root: logging.Logger) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_FLAG, False):
            root.removeHandler(handler)
            handler.close()
