"""`hailuo-bot doctor` against real parts: a SQLite file, the loopback Discord, the simulator, real sockets."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.core.engine import Engine, StartupError
from bot.doctor import (
    Finding,
    check_config,
    check_database,
    check_discord,
    check_runware,
    check_webhook,
    intent_notes,
    run_doctor,
)
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator
from bot.store.postgres.db import LATEST_VERSION as PG_LATEST
from bot.store.sqlite.db import LATEST_VERSION
from tests.fakes.discord import FakeDiscord
from tests.helpers import free_port, make_settings


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def settings_for(
    db_path: Path, sim: RunwareSimulator, discord: FakeDiscord
) -> Iterator[Any]:  # a factory: settings_for(**sections) -> Settings
    def make(*, token: str | None = None, **sections: Any) -> Settings:
        return make_settings(
            db_path,
            sim.base_url,
            discord_base=discord.api_base,
            token=discord.token if token is None else token,
            **sections,
        )

    yield make


def assert_one_line_problem(f: Finding, *words: str) -> None:
    assert not f.ok, f
    assert "\n" not in f.line()
    for word in words:
        assert word in f.text, (word, f.text)


async def test_all_good_prints_one_line_per_check_and_exits_zero(settings_for: Any) -> None:
    code, lines = await run_doctor(settings_for(), "config.toml")
    assert code == 0, lines
    assert [line.split("]")[1].split(":")[0].strip() for line in lines[:-1]] == [
        "config",
        "database",
        "prices",
        "discord",
        "runware",
        "webhook",
    ]
    assert all(line.startswith("[ok  ]") for line in lines[:-1]), lines
    assert lines[-1] == "all good"


async def test_config_finding_names_the_source_and_the_mode(settings_for: Any) -> None:
    live = await check_config(settings_for(), "/etc/hailuo/config.toml")
    assert live.ok and "/etc/hailuo/config.toml" in live.text and "live" in live.text
    dry = await check_config(settings_for(dry_run=True), "built-in defaults (no config.toml found)")
    assert dry.ok and "built-in defaults" in dry.text and "DRY RUN" in dry.text


async def test_database_writable_and_migrated(settings_for: Any, db_path: Path) -> None:
    f = await check_database(settings_for())
    assert f.ok and "writable" in f.text and f"schema version {LATEST_VERSION}" in f.text
    assert db_path.exists()


async def test_postgres_database_reachable_and_migrated(settings_for: Any, pg_url: str) -> None:
    f = await check_database(settings_for(database={"url": pg_url}))
    assert f.ok and "PostgreSQL" in f.text and f"schema version {PG_LATEST}" in f.text


async def test_postgres_database_unreachable_is_one_line_without_the_password(
    settings_for: Any, unused_tcp_port: int
) -> None:
    url = f"postgresql://bot:hunter2@127.0.0.1:{unused_tcp_port}/hailuo"
    f = await check_database(settings_for(database={"url": url}))
    assert_one_line_problem(f, f"bot@127.0.0.1:{unused_tcp_port}/hailuo", "DATABASE_URL")
    assert "hunter2" not in f.text


async def test_database_that_cannot_be_created_is_one_line_with_the_fix(settings_for: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    f = await check_database(settings_for(database={"path": str(blocker / "bot.sqlite3")}))
    assert_one_line_problem(f, str(blocker / "bot.sqlite3"), "writable", "database.path")


async def test_a_corrupt_database_file_is_not_told_to_make_its_folder_writable(
    settings_for: Any, tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"this is not a SQLite file at all, just some bytes " * 100)
    f = await check_database(settings_for(database={"path": str(path)}))
    assert_one_line_problem(f, str(path), "not a SQLite database or is damaged", "backup")
    assert "writable" not in f.text


async def test_a_database_from_a_newer_build_says_so(settings_for: Any, tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    f = await check_database(settings_for(database={"path": str(path)}))
    assert_one_line_problem(f, str(path), "newer than this build", "upgrade hailuo-bot")
    assert "writable" not in f.text


async def test_the_bot_start_names_a_corrupt_database_plainly(settings_for: Any, tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"SQLite format 2\x00" + b"garbage" * 1000)
    with pytest.raises(StartupError) as err:
        await Engine(settings_for(database={"path": str(path)})).start()
    message = err.value.detail
    assert "not a SQLite database or is damaged" in message and "writable" not in message and "\n" not in message


async def test_discord_token_valid(settings_for: Any, discord: FakeDiscord) -> None:
    f = await check_discord(settings_for())
    assert f.ok and not f.warning, f
    assert discord.bot_user.username in f.text and "no privileged intents" in f.text
    assert f"client_id={discord.application_id}" in f.text  # the invite link
    assert {r.route for r in discord.requests} >= {"GET /users/@me", "GET /oauth2/applications/@me"}
    assert discord.token not in f.line()


async def test_discord_token_refused(settings_for: Any) -> None:
    f = await check_discord(settings_for(token="not.the-right.token"))
    assert_one_line_problem(f, "refused DISCORD_TOKEN", "Developer Portal")
    assert "not.the-right.token" not in f.line()


async def test_discord_token_unset(settings_for: Any) -> None:
    f = await check_discord(settings_for(token=""))
    assert_one_line_problem(f, "DISCORD_TOKEN is not set", "export DISCORD_TOKEN=")


async def test_discord_unreachable(settings_for: Any) -> None:
    base = f"http://127.0.0.1:{free_port()}/api/v10"
    f = await check_discord(settings_for(discord={"api_base": base}))
    assert_one_line_problem(f, "could not reach Discord", base, "discord.api_base")


def test_intent_notes_say_which_privileged_intents_are_switched_on() -> None:
    assert intent_notes(1 << 23) is None  # APPLICATION_COMMAND_BADGE: nothing odd
    note = intent_notes((1 << 15) | (1 << 18))
    assert note is not None
    assert "Message Content" in note and "Server Members" in note and "switch them off" in note
    single = intent_notes(1 << 12)
    assert single is not None and "Presence intent is" in single


async def test_runware_key_valid_shows_the_balance(settings_for: Any, sim: RunwareSimulator) -> None:
    sim.balance = 42.5
    f = await check_runware(settings_for())
    assert f.ok and not f.warning and "$42.50" in f.text
    assert sim.count("accountManagement") == 1


async def test_runware_key_refused(settings_for: Any) -> None:
    f = await check_runware(settings_for(runware={"api_key": "wrong-key"}))
    assert_one_line_problem(f, "refused RUNWARE_API_KEY", "API Keys")
    assert "wrong-key" not in f.line()


async def test_runware_key_unset(settings_for: Any) -> None:
    f = await check_runware(settings_for(runware={"api_key": ""}))
    assert_one_line_problem(f, "RUNWARE_API_KEY is not set", "--dry-run")


async def test_runware_in_dry_run_needs_no_key(settings_for: Any, sim: RunwareSimulator) -> None:
    f = await check_runware(settings_for(dry_run=True, runware={"api_key": ""}))
    assert f.ok and "simulator" in f.text
    assert sim.requests == []


async def test_runware_low_balance_is_a_warning_not_a_failure(settings_for: Any, sim: RunwareSimulator) -> None:
    sim.balance = 1.25
    f = await check_runware(settings_for())
    assert f.ok and f.warning and "$1.25" in f.text and "top up" in f.text
    assert f.line().startswith("[warn]")
    code, lines = await run_doctor(settings_for(), "config.toml")
    assert code == 0
    assert "1 warning(s)" in lines[-1]


async def test_runware_unreachable(settings_for: Any) -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"
    f = await check_runware(settings_for(runware={"api_base": base}))
    assert_one_line_problem(f, base, "runware.api_base")


async def test_webhook_listener_binds_and_polling_without_public_url(settings_for: Any) -> None:
    f = await check_webhook(settings_for())
    assert f.ok and "polling" in f.text


async def test_webhook_port_in_use_by_something_else(settings_for: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: nothing answers there
        port = taken.getsockname()[1]
        f = await check_webhook(settings_for(webhook={"listen": f"127.0.0.1:{port}"}))
    assert_one_line_problem(f, f"127.0.0.1:{port}", "webhook.listen")


async def test_webhook_port_held_by_the_running_bot_reports_its_health(settings_for: Any) -> None:
    port = free_port()
    settings = settings_for(webhook={"listen": f"127.0.0.1:{port}"})
    engine = Engine(settings)
    await engine.start()
    try:
        f = await check_webhook(settings)
        assert_one_line_problem(f, "already running", "tracker")  # not tracking yet: /healthz says 503
        await engine.start_tracking()
        f = await check_webhook(settings)
        assert f.ok and "already running" in f.text, f
    finally:
        await engine.close()


async def test_webhook_public_url_reaches_the_listener(settings_for: Any) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    f = await check_webhook(settings_for(webhook={"listen": f"127.0.0.1:{port}", "public_url": public}))
    assert f.ok and f"{public} reaches it" in f.text, f


async def test_webhook_public_url_that_does_not_reach_it(settings_for: Any) -> None:
    public = f"http://127.0.0.1:{free_port()}"
    f = await check_webhook(settings_for(webhook={"listen": f"127.0.0.1:{free_port()}", "public_url": public}))
    assert_one_line_problem(f, public, "does not reach", "polling")


async def test_webhook_public_url_answered_by_another_server(settings_for: Any, receiver: Any) -> None:
    listen = f"127.0.0.1:{free_port()}"
    f = await check_webhook(settings_for(webhook={"listen": listen, "public_url": receiver.url}))
    assert_one_line_problem(f, receiver.url, "not from this bot's listener", "/runware/")
    [(method, path, _)] = receiver.calls
    assert method == "GET" and path.startswith("/runware/doctor-")


async def test_any_failure_makes_the_exit_code_non_zero(settings_for: Any) -> None:
    code, lines = await run_doctor(settings_for(token="", runware={"api_key": "wrong-key"}), "config.toml")
    assert code == 1
    fails = [line for line in lines if line.startswith("[FAIL]")]
    assert [line.split(":")[0] for line in fails] == ["[FAIL] discord", "[FAIL] runware"]
    assert lines[-1].startswith("2 problem(s) found")


def test_cli_doctor_prints_findings_only_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml here: built-in defaults
    monkeypatch.setenv("HAILUO_DATABASE__PATH", str(tmp_path / "data" / "bot.sqlite3"))
    monkeypatch.setenv("HAILUO_WEBHOOK__LISTEN", "127.0.0.1:0")
    code = main(["doctor", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("[ok  ] config: loaded from built-in defaults") and "DRY RUN" in out[0]
    assert out[1].startswith("[ok  ] database:")
    assert out[2].startswith("[ok  ] prices: [pricing] is within 5 % of what Runware reported")
    assert out[3].startswith("[FAIL] discord: DISCORD_TOKEN is not set")
    assert out[4].startswith("[ok  ] runware: dry run")
    assert out[5].startswith("[ok  ] webhook:")
    assert out[6].startswith("1 problem(s) found")
    assert len(out) == 7  # no log lines among the findings
