"""`hailuo-bot copy-db --to URL`: move an install from its SQLite file to an empty PostgreSQL database.

Stop the bot first (the copy reads a consistent picture either way, but jobs a running bot adds afterwards stay
behind). Then point `database.url` / `DATABASE_URL` at the new database and start the bot(s) on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from urllib.parse import urlsplit

import asyncpg

from bot.core.models import format_usd
from bot.settings import Settings
from bot.store.driver import SchemaError
from bot.store.postgres.db import PostgresDatabase, describe_url
from bot.store.sqlite.db import SqliteDatabase
from bot.store.transfer import CopyMismatch, CopyRefused, TableCopy, copy_database, foreign_tables


class CopyFailed(RuntimeError):
    """The copy did not happen (or was rolled back); the message is one line that says what to do."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


async def copy_db(settings: Settings, url: str, out: Callable[[str], None]) -> None:
    """Copy the config's SQLite database into the PostgreSQL database at `url`, one line per table to `out`."""
    path = settings.database.path
    if urlsplit(url).scheme not in ("postgres", "postgresql"):
        raise CopyFailed(f"--to must be a postgresql:// URL, not {url.split(':', 1)[0]!r}")
    if not path.is_file():
        raise CopyFailed(f"there is no SQLite database at {path}: set database.path to the file the bot used")
    where = describe_url(url)
    try:
        foreign = await foreign_tables(url)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CopyFailed(f"can't connect to {where} ({_why(exc)}): check the URL and that the server runs") from exc
    if foreign:
        raise CopyFailed(
            f"{where} is not empty (it has tables {', '.join(foreign[:5])}): copy into a new, empty database"
        )
    async with contextlib.AsyncExitStack() as stack:
        source = SqliteDatabase(path)
        target = PostgresDatabase(url)
        try:
            await source.open()
            stack.push_async_callback(source.close)
            await target.open()
            stack.push_async_callback(target.close)

            def line(done: TableCopy) -> None:
                out(f"{done.table}: {done.rows} row{'s' if done.rows != 1 else ''} copied")

            summary = await copy_database(source, target, on_table=line)
        except (CopyRefused, CopyMismatch, SchemaError) as exc:
            raise CopyFailed(str(exc)) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise CopyFailed(f"the copy to {where} failed and was rolled back ({_why(exc)})") from exc
    out(
        f"done: {sum(t.rows for t in summary.tables)} rows in {len(summary.tables)} tables, counts and ledger totals "
        f"checked (charged {format_usd(summary.charged_micros)}, held {format_usd(summary.held_micros)}); "
        "set database.url / DATABASE_URL to use it"
    )
