"""The command line in a real process: a missing secret or a bad setting is one plain line, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.discord import FakeDiscord
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
# Shaped like a real bot token (id . timestamp . hmac), so the log filter's pattern would catch it too; the test
# registers nothing: the process masks it because it is its DISCORD_TOKEN.
TOKEN = "MTE4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
EX_UNAVAILABLE = 69
EX_CONFIG = 78


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def one_line(self) -> str:
        """The single stderr line, after checking that there is exactly one and no traceback anywhere."""
        assert "Traceback" not in self.out + self.err, self.out + self.err
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("hailuo-bot: ")
        return line


def closed_api_base() -> str:
    return f"http://127.0.0.1:{free_port()}/api/v10"


async def run_cli(cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30) -> Result:
    """Run `python -m bot ARGS` from `cwd` with a clean environment plus `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HAILUO_")}
    full.pop("DISCORD_TOKEN", None)
    full.pop("RUNWARE_API_KEY", None)
    full.pop("WEBHOOK_SECRET", None)
    full["PYTHONPATH"] = str(ROOT)
    full["HAILUO_DATABASE__PATH"] = str(cwd / "bot.sqlite3")
    full["HAILUO_WEBHOOK__LISTEN"] = "127.0.0.1:0"
    full.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=full,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


async def test_missing_discord_token_is_one_line_saying_where_to_put_it(tmp_path: Path) -> None:
    r = await run_cli(tmp_path)
    line = r.one_line()
    assert r.code == EX_CONFIG
    assert "DISCORD_TOKEN is not set" in line and "export DISCORD_TOKEN=" in line and "environment" in line
    assert "Developer Portal" in line
    assert r.out == ""  # nothing else: not even a log line


async def test_missing_runware_key_without_dry_run_is_one_line(tmp_path: Path) -> None:
    r = await run_cli(tmp_path, env={"DISCORD_TOKEN": TOKEN})
    line = r.one_line()
    assert r.code == EX_CONFIG
    assert "RUNWARE_API_KEY is not set" in line and "export RUNWARE_API_KEY=" in line and "--dry-run" in line
    assert TOKEN not in r.out + r.err


async def test_dry_run_needs_only_the_discord_token(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "HAILUO_DISCORD__API_BASE": closed_api_base()}
    r = await run_cli(tmp_path, "--dry-run", env=env)
    line = r.one_line()
    # Past the secret checks: it got as far as Discord (unreachable here), and said so plainly.
    assert r.code == EX_UNAVAILABLE
    assert "RUNWARE_API_KEY" not in line
    assert "could not reach Discord" in line and "discord.api_base" in line


@pytest.mark.parametrize(
    ("env", "toml", "words"),
    [
        ({"HAILUO_RUNWARE__POLL_INTERVALL": "5"}, None, ["HAILUO_RUNWARE__POLL_INTERVALL", "'runware.poll_intervall'"]),
        ({"HAILUO_RUNWARE__POLL_INTERVAL": "soon"}, None, ["HAILUO_RUNWARE__POLL_INTERVAL", "runware.poll_interval"]),
        ({}, "[runware]\npoll_intervall = 5\n", ["config.toml", "'runware.poll_intervall'"]),
        ({}, "[runware]\nttl = 30\n", ["config.toml", "runware.ttl", "at least 60 seconds"]),
        ({}, "dry_run = [nope\n", ["config.toml", "not valid TOML"]),
    ],
)
async def test_a_wrong_setting_is_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], toml: str | None, words: list[str]
) -> None:
    if toml is not None:
        (tmp_path / "config.toml").write_text(toml)
    r = await run_cli(tmp_path, env={"DISCORD_TOKEN": TOKEN, **env})
    line = r.one_line()
    assert r.code == EX_CONFIG
    for word in words:
        assert word in line, (word, line)


async def test_a_missing_config_path_is_one_line_naming_it(tmp_path: Path) -> None:
    r = await run_cli(tmp_path, "--config", "conf/missing.toml", env={"DISCORD_TOKEN": TOKEN})
    line = r.one_line()
    assert r.code == EX_CONFIG
    assert "config file not found: conf/missing.toml" in line and "config.example.toml" in line


async def test_an_unusable_database_stops_the_start_with_one_line(tmp_path: Path, discord: FakeDiscord) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {
        "DISCORD_TOKEN": discord.token,
        "HAILUO_DISCORD__API_BASE": discord.api_base,
        "HAILUO_DATABASE__PATH": str(blocker / "bot.sqlite3"),
    }
    r = await run_cli(tmp_path, "--dry-run", env=env)
    line = r.one_line()
    assert r.code == EX_UNAVAILABLE
    assert str(blocker / "bot.sqlite3") in line and "database.path" in line


async def test_a_taken_webhook_port_stops_the_start_with_one_line(tmp_path: Path, discord: FakeDiscord) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        env = {
            "DISCORD_TOKEN": discord.token,
            "HAILUO_DISCORD__API_BASE": discord.api_base,
            "HAILUO_WEBHOOK__LISTEN": f"127.0.0.1:{port}",
        }
        r = await run_cli(tmp_path, "--dry-run", env=env)
    line = r.one_line()
    assert r.code == EX_UNAVAILABLE
    assert f"127.0.0.1:{port}" in line and "webhook.listen" in line


async def test_a_refused_token_is_one_line_and_is_not_echoed(tmp_path: Path, discord: FakeDiscord) -> None:
    env = {"DISCORD_TOKEN": TOKEN, "HAILUO_DISCORD__API_BASE": discord.api_base}
    r = await run_cli(tmp_path, "--dry-run", env=env)
    line = r.one_line()
    assert r.code == EX_UNAVAILABLE
    assert "Discord refused DISCORD_TOKEN" in line
    assert TOKEN not in r.out + r.err


async def test_secrets_are_masked_in_the_real_process_logs(tmp_path: Path) -> None:
    """JSON logs at DEBUG, with every secret set, and the token even inside a URL the bot logs and reports."""
    runware_key = "rw-key-0123456789abcdef"
    webhook_secret = "wh-secret-0123456789abcdef"
    base = f"http://127.0.0.1:{free_port()}/proxy/{TOKEN}/api/v10"
    env = {
        "DISCORD_TOKEN": TOKEN,
        "RUNWARE_API_KEY": runware_key,
        "WEBHOOK_SECRET": webhook_secret,
        "HAILUO_DISCORD__API_BASE": base,
        "HAILUO_LOGGING__LEVEL": "DEBUG",
        "HAILUO_LOGGING__JSON": "true",
    }
    r = await run_cli(tmp_path, env=env)
    line = r.one_line()
    assert r.code == EX_UNAVAILABLE
    assert "could not reach Discord" in line and "/proxy/***/api/v10" in line
    records = [json.loads(text) for text in r.out.splitlines()]  # every stdout line is one JSON object
    assert records and all({"ts", "level", "logger", "msg"} <= set(rec) for rec in records)
    assert any(rec["logger"] == "bot.cli" and "configuration" in rec["msg"] for rec in records)
    [settings] = [rec["msg"] for rec in records if rec["msg"].startswith("settings: ")]  # the DEBUG dump
    assert "/proxy/***/api/v10" in settings
    for secret in (TOKEN, runware_key, webhook_secret):
        assert secret not in r.out and secret not in r.err


async def test_sqlite_with_only_some_of_the_shards_is_refused_at_start_up_in_one_line(tmp_path: Path) -> None:
    result = await run_cli(
        tmp_path,
        env={"DISCORD_TOKEN": TOKEN, "HAILUO_DISCORD__SHARD_COUNT": "2", "HAILUO_DISCORD__SHARD_IDS": "[1]"},
    )
    assert result.code == EX_CONFIG
    line = result.one_line()
    assert "SQLite serves one process" in line and "database.url" in line
    assert not (tmp_path / "data").exists()  # refused before anything was opened


@pytest.mark.parametrize("command", [["generate", "a fox in the snow", "--dry-run"], ["doctor"], []])
async def test_a_webhook_secret_with_a_space_is_one_line_that_never_shows_the_secret(
    tmp_path: Path, command: list[str]
) -> None:
    secret = "my webhook secret/with+slashes"
    env = {"WEBHOOK_SECRET": secret, "HAILUO_WEBHOOK__PUBLIC_URL": "https://bot.example", "DISCORD_TOKEN": TOKEN}
    env["HAILUO_WEBHOOK__LISTEN"] = "127.0.0.1:8080"
    r = await run_cli(tmp_path, *command, env=env)
    line = r.one_line()
    assert r.code == EX_CONFIG
    assert "WEBHOOK_SECRET: webhook.secret: must be URL-safe" in line
    assert secret not in r.out + r.err and "my webhook" not in r.out + r.err


async def test_doctor_names_a_model_the_bot_does_not_speak_in_one_line(tmp_path: Path) -> None:
    r = await run_cli(
        tmp_path, "doctor", env={"HAILUO_RUNWARE__MODEL": "minimax:3@2", "HAILUO_LIMITS__MEMBER_DAY_USD": "1"}
    )
    line = r.one_line()
    assert r.code == EX_CONFIG and "runware.model" in line and "minimax:3@1" in line
