"""Project-wide fixtures: settings on a temporary SQLite file, the Runware simulator, the loopback Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.logs import reset_logging
from bot.store.sqlite.db import Database

pytest_plugins = ["tests.conftest_runware"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own tokens or HAILUO_* settings."""
    import os

    for key in list(os.environ):
        if key.startswith("HAILUO_") or key in ("DISCORD_TOKEN", "RUNWARE_API_KEY", "WEBHOOK_SECRET"):
            monkeypatch.delenv(key)
    yield
    reset_logging()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hailuo.sqlite3"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """An open, migrated SQLite database in a fresh folder (the folder is created as the bot does)."""
    database = Database(tmp_path / "data" / "bot.sqlite3")
    await database.open()
    yield database
    await database.close()
