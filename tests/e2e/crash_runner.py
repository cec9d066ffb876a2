"""Run the real bot as a child process (`python -m bot --config PATH`) for the kill tests.

The test process hosts the loopback Discord and the Runware simulator; the bot is a separate process that can be
SIGKILLed at a crash point (HAILUO_CRASH_AT) and started again against the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.crashpoints import ENV as CRASH_ENV
from tests.fakes.discord import FakeDiscord
from tests.helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_KEY = "sim-key"
WEBHOOK_SECRET = "crash-test-webhook-secret"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a small TOML file (tables of scalars and lists only)."""
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours without HAILUO_* and secrets, the repo importable, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HAILUO_") and k not in ("DISCORD_TOKEN", "RUNWARE_API_KEY", "WEBHOOK_SECRET")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class CrashSetup:
    """Everything one kill test shares across the bot's restarts."""

    config: Path
    db_path: Path
    webhook_port: int

    @classmethod
    def create(cls, tmp_path: Path, fake: FakeDiscord, runware_base: str) -> CrashSetup:
        port = free_port()
        db_path = tmp_path / "bot.sqlite3"
        config = write_config(
            tmp_path / "config.toml",
            {
                "discord": {"api_base": fake.api_base, "dev_guild_ids": [1000]},
                "runware": {"api_base": runware_base, "poll_interval": 0.2, "request_timeout": 5},
                "webhook": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"},
                "database": {"path": str(db_path)},
                "delivery": {"status_edit_interval": 0, "download_timeout": 10},
            },
        )
        return cls(config=config, db_path=db_path, webhook_port=port)


class BotProcess:
    """One `python -m bot` child at a time; its output goes to a log file kept for failure messages."""

    def __init__(self, config: Path, log_path: Path, env: Mapping[str, str]) -> None:
        self.config = config
        self.log_path = log_path
        self.env = dict(env)
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, *, crash_at: str | None = None, env: Mapping[str, str] | None = None) -> None:
        assert self.proc is None or self.proc.returncode is not None, "the previous bot is still running"
        extra = {**self.env, **(env or {})}
        if crash_at is not None:
            extra[CRASH_ENV] = crash_at
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} (crash at {crash_at}) =====\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=child_env(extra),
                cwd=self.config.parent,
            )

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the bot did not exit within {timeout}s\n{self.log_tail()}") from None

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM (a clean shutdown) and wait for the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def kill(self) -> None:
        """Make sure no child outlives the test."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    async def wait_for(self, fake: FakeDiscord, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait on the fake's state, but fail at once (with the bot's log) if the bot process ends first."""
        assert self.proc is not None
        waiting = asyncio.ensure_future(fake.wait_until(predicate, timeout, what))
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited
        if waiting.done():
            try:
                waiting.result()
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n{self.log_tail()}") from None
            return
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await waiting
        if predicate():
            return
        raise AssertionError(f"the bot exited ({self.returncode}) before {what}\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no bot log)"
        return "----- bot log (tail) -----\n" + "\n".join(text.splitlines()[-lines:])


def read_rows(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Read the bot's database directly (after the bot has exited)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, params))
    finally:
        conn.close()
