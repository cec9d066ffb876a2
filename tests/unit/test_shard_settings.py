"""The shards of a process (SPEC §10): passed to discord.py as given; SQLite with only some shards is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.app import shard_options
from bot.settings import SECRET_ENV, ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("HAILUO_") or key in SECRET_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_no_shard_settings_let_discord_recommend_the_count_and_run_every_shard() -> None:
    assert shard_options(Settings()) == {"shard_count": None}


def test_shard_settings_from_the_environment_reach_discord_py(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot@db:5432/hailuo")
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_COUNT", "4")
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_IDS", "[2, 3]")
    settings, _ = load_settings()
    assert shard_options(settings) == {"shard_count": 4, "shard_ids": [2, 3]}


def test_sqlite_with_some_of_the_shards_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_COUNT", "2")
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_IDS", "[1]")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert "SQLite serves one process" in message and "database.url" in message


def test_sqlite_with_every_shard_listed_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_COUNT", "2")
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_IDS", "[1, 0]")
    settings, _ = load_settings()
    assert shard_options(settings) == {"shard_count": 2, "shard_ids": [1, 0]}


@pytest.mark.parametrize(
    ("count", "ids", "says"),
    [("0", "[0]", "needs discord.shard_count"), ("2", "[2]", "from 0 to 1"), ("2", "[0, 0]", "distinct")],
)
def test_shard_ids_that_cannot_work_are_refused(
    monkeypatch: pytest.MonkeyPatch, count: str, ids: str, says: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot@db:5432/hailuo")
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_COUNT", count)
    monkeypatch.setenv("HAILUO_DISCORD__SHARD_IDS", ids)
    with pytest.raises(ConfigError, match=says):
        load_settings()


def test_the_lease_defaults_to_three_poll_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_RUNWARE__POLL_INTERVAL", "4")
    settings, _ = load_settings()
    assert settings.lease_seconds == 12
    monkeypatch.setenv("HAILUO_DATABASE__LEASE_SECONDS", "45")
    settings, _ = load_settings()
    assert settings.lease_seconds == 45
