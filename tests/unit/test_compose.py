"""docker-compose.yml, read as data (no Docker needed): PostgreSQL with a volume and a health check, and two bot
processes with half the shards each that wait for it (SPEC §10)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_ENV = ("DISCORD_TOKEN", "RUNWARE_API_KEY", "WEBHOOK_SECRET", "POSTGRES_PASSWORD", "DATABASE_URL")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))  # merge keys (<<) resolved
    assert isinstance(data, dict)
    return data


def bots(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == "hailuo-bot"}


def test_postgresql_keeps_its_data_on_a_volume_and_says_when_it_is_ready(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert pg["image"].startswith("postgres:")
    [volume] = pg["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data" and name in compose["volumes"]
    check = pg["healthcheck"]["test"]
    assert "pg_isready" in " ".join(check)
    assert pg["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_two_bot_processes_run_half_the_shards_each_on_the_postgresql_database(compose: dict[str, Any]) -> None:
    services = bots(compose)
    assert len(services) == 2
    shards: list[int] = []
    for svc in services.values():
        env = svc["environment"]
        count = int(env["HAILUO_DISCORD__SHARD_COUNT"])
        ids = json.loads(env["HAILUO_DISCORD__SHARD_IDS"])
        assert len(ids) == count // 2
        shards += ids
        assert re.fullmatch(r"postgresql://\w+:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/\w+", env["DATABASE_URL"])
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        # The settings accept this process's shards (with DATABASE_URL set; SQLite would refuse a partial set).
        settings = Settings(
            discord={"shard_count": count, "shard_ids": ids}, database={"url": "postgresql://u@postgres/db"}
        )
        assert settings.discord.shard_ids == ids
    assert sorted(shards) == list(
        range(int(next(iter(services.values()))["environment"]["HAILUO_DISCORD__SHARD_COUNT"]))
    )


def test_one_bot_publishes_the_webhook_port_and_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    published = {name: svc.get("ports", []) for name, svc in bots(compose).items() if svc.get("ports")}
    assert list(published.values()) == [["8080:8080"]]
    for svc in bots(compose).values():
        env = svc["environment"]
        for key in SECRET_ENV:
            if key in env:
                assert "${" in env[key], f"{key} must come from the environment"
