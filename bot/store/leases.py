"""Leases: which process works on a job (or posts a result) right now, so several processes can share one database.

A lease is an owner (a process's owner id) and a deadline (ISO text, like every stored time): a job's in the narrow
`job_leases` table (one row per job, written with the job), a result's in its `lease_owner`/`lease_until` columns.
A claim is a compare-and-set UPDATE: it takes the rows whose lease is free, lapsed, or already this process's, and
returns the ids it got; work on any other row is left to its owner. On PostgreSQL the rows are picked with
`SELECT … FOR UPDATE SKIP LOCKED`, so concurrent claims of overlapping batches neither wait nor deadlock. The owner
renews its leases while it lives (`renew`), so they lapse only when it dies or hangs, and then another process
claims them. The SQL is portable: `?` placeholders, `UPDATE … RETURNING`, string comparison of fixed-width UTC text.

With SQLite (one bot process, SPEC §10) every lease found when the bot starts tracking belongs to a dead process:
`clear` frees them (the `generate` CLI never tracks, so it leaves a running bot's leases alone).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.models import utc_now
from bot.store.driver import Database, marks, to_db_time

log = logging.getLogger(__name__)

#: Claims go out in chunks of this many ids (SQLite allows 32766 parameters; PostgreSQL 65535).
CHUNK = 500
_UNFINISHED_JOBS = "('reserved', 'submitted', 'cancelled')"
_UNDELIVERED_RESULTS = "('pending', 'delivering')"


@dataclass(frozen=True, slots=True)
class _Kind:
    """Where the leases of one kind of work live: `table` with its key and lease columns, read as `l` in `source`
    (which joins the work's own row as `w` when the lease has a table of its own); `work` is the work's table, whose
    state (`state` as read in `source`) says whether it is still to do."""

    table: str
    key: str
    owner: str
    until: str
    source: str
    state: str
    work: str
    unfinished: str

    def unfinished_keys(self) -> str:
        """A subquery of the ids whose work is not done yet."""
        return f"SELECT id FROM {self.work} WHERE state IN {self.unfinished}"


_JOBS = _Kind(
    "job_leases",
    "job_id",
    "owner",
    "until",
    "job_leases l JOIN jobs w ON w.id = l.job_id",
    "w.state",
    "jobs",
    _UNFINISHED_JOBS,
)
_RESULTS = _Kind("results", "id", "lease_owner", "lease_until", "results l", "l.state", "results", _UNDELIVERED_RESULTS)


def make_owner_id() -> str:
    """This process's owner id: host, pid and a random tail (a restarted process with the same pid is another)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i : i + CHUNK] for i in range(0, len(unique), CHUNK)]


class Leases:
    """This process's claims on jobs and results."""

    def __init__(
        self,
        db: Database,
        *,
        seconds: float,
        owner: str | None = None,
        shared: bool = False,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if seconds <= 0:
            raise ValueError("a lease must last more than 0 seconds")
        self._db = db
        self.seconds = seconds
        self.owner = owner or make_owner_id()
        #: True when other processes may use the same database (PostgreSQL); False for SQLite.
        self.shared = shared
        self._clock = clock
        # One claim at a time per process: SKIP LOCKED is for other processes; two tasks of this one (a sweep and a
        # webhook's follow-up, say) wait for each other instead of skipping rows that are already theirs.
        self._lock = asyncio.Lock()

    def _times(self) -> tuple[str, str]:
        now = self._clock()
        return to_db_time(now), to_db_time(now + timedelta(seconds=self.seconds))

    def grant(self) -> tuple[str, datetime]:
        """(owner, until) for a row this process writes already claimed (a job at its reservation)."""
        return self.owner, self._clock() + timedelta(seconds=self.seconds)

    async def _claim(
        self, kind: _Kind, ids: Iterable[int], extra: str = "", extra_params: tuple[object, ...] = ()
    ) -> set[int]:
        got: set[int] = set()
        now, until = self._times()
        wanted = _chunks(ids)
        todo = f" AND {kind.state} IN {kind.unfinished}{extra}"
        async with self._lock:
            # First a plain read: the rows already this process's and live need no write (the lease keeper renews
            # them), and when that is all of them, no write transaction is opened at all. The owner is compared
            # here, not in SQL: with `owner = ?` PostgreSQL's generic plan walks the owner index (every row this
            # process holds) for each chunk instead of seeking the ids (50x slower).
            chunks: list[list[int]] = []
            for chunk in wanted:
                live = await self._db.fetchall(
                    f"SELECT l.{kind.key}, l.{kind.owner} FROM {kind.source} "
                    f"WHERE l.{kind.key} IN ({marks(len(chunk))}) AND l.{kind.until} > ?{todo}",
                    (*chunk, now, *extra_params),
                )
                got.update(int(row[0]) for row in live if row[1] == self.owner)
                held = {int(row[0]) for row in live}  # live leases, this process's or another's: nothing to take
                if rest := [row_id for row_id in chunk if row_id not in held]:
                    chunks.append(rest)
            if chunks:
                got |= await self._take(kind, chunks, now, until, todo, extra_params)
        return got

    async def _take(
        self, kind: _Kind, chunks: list[list[int]], now: str, until: str, todo: str, extra_params: tuple[object, ...]
    ) -> set[int]:
        """The compare-and-set: of these rows, take the ones whose lease is free or lapsed; one commit in all."""
        got: set[int] = set()
        async with self._db.transaction() as conn:
            for chunk in chunks:
                free = (
                    f"SELECT l.{kind.key} FROM {kind.source} WHERE l.{kind.key} IN ({marks(len(chunk))}) "
                    f"AND (l.{kind.until} IS NULL OR l.{kind.until} <= ?){todo}"
                )
                if self._db.dialect == "postgres":
                    # Rows another claim has locked this instant are skipped, not waited for: two processes claiming
                    # overlapping batches never queue behind each other nor deadlock; the rows skipped stay theirs.
                    free += f" ORDER BY l.{kind.key} FOR UPDATE OF l SKIP LOCKED"
                rows = await conn.fetchall(
                    f"UPDATE {kind.table} SET {kind.owner} = ?, {kind.until} = ? WHERE {kind.key} IN ({free}) "
                    f"RETURNING {kind.key}",
                    (self.owner, until, *chunk, now, *extra_params),
                )
                got.update(int(row[0]) for row in rows)
        return got

    def still_held(self, leases: Iterable[tuple[int, str | None, str | None]]) -> set[int]:
        """Of `(id, lease_owner, lease_until)` as just read, the ids whose lease is this process's and live: nothing to
        claim for those (the lease keeper renews them), so a sweep sends claims only for the rest."""
        now, _ = self._times()
        return {row_id for row_id, owner, until in leases if owner == self.owner and until is not None and until > now}

    async def claim_jobs(self, job_ids: Iterable[int], *, unleased_before: datetime | None = None) -> set[int]:
        """Claim jobs for this process; returns the ids it now holds (its own live leases included, left as they are:
        `renew` pushes them back).

        `unleased_before`: a job that never had a lease (lease_until NULL) is claimed only if created before this time
        (a job another process has just reserved gets its lease a moment after its row, so a young one is left
        alone); a released lease keeps lease_until (the release time), so its job is free at once.
        """
        if unleased_before is None:
            return await self._claim(_JOBS, job_ids)
        young = " AND (l.until IS NOT NULL OR w.created_at < ?)"
        return await self._claim(_JOBS, job_ids, young, (to_db_time(unleased_before),))

    async def left_by_others(self, job_ids: Iterable[int]) -> set[int]:
        """Of these jobs, the ones another process held and let go: its lease lapsed (it died) or it released it."""
        now, _ = self._times()
        got: set[int] = set()
        for chunk in _chunks(job_ids):
            rows = await self._db.fetchall(
                f"SELECT job_id FROM job_leases WHERE job_id IN ({marks(len(chunk))}) AND until IS NOT NULL "
                "AND until <= ? AND (owner IS NULL OR owner <> ?)",
                (*chunk, now, self.owner),
            )
            got.update(int(row[0]) for row in rows)
        return got

    async def claim_job(self, job_id: int) -> bool:
        return job_id in await self.claim_jobs([job_id])

    async def claim_results(self, result_ids: Iterable[int]) -> set[int]:
        """Claim results to post them; returns the ids this process may post."""
        return await self._claim(_RESULTS, result_ids)

    async def renew(self) -> int:
        """Push back the deadline of every lease this process holds on work not done yet; returns how many."""
        _, until = self._times()
        renewed = 0
        async with self._lock, self._db.transaction() as conn:
            for kind in (_JOBS, _RESULTS):
                renewed += await conn.execute(
                    f"UPDATE {kind.table} SET {kind.until} = ? WHERE {kind.owner} = ? "
                    f"AND {kind.key} IN ({kind.unfinished_keys()})",
                    (until, self.owner),
                )
        return renewed

    async def release_all(self) -> None:
        """Give up every lease of this process (a clean shutdown): the others take its work over at once."""
        now, _ = self._times()
        async with self._db.transaction() as conn:
            for kind in (_JOBS, _RESULTS):
                await conn.execute(  # the deadline stays set (to now): a released job is not a just-reserved one
                    f"UPDATE {kind.table} SET {kind.owner} = NULL, {kind.until} = ? WHERE {kind.owner} = ?",
                    (now, self.owner),
                )
        log.info("leases of %s released", self.owner)

    async def clear(self) -> None:
        """Free every lease (SQLite at start-up: only one process uses the file, so whoever held them is gone)."""
        now, _ = self._times()
        async with self._db.transaction() as conn:
            for kind in (_JOBS, _RESULTS):
                await conn.execute(
                    f"UPDATE {kind.table} SET {kind.owner} = NULL, {kind.until} = ? WHERE {kind.owner} IS NOT NULL",
                    (now,),
                )

    async def holder(self, table: str, row_id: int) -> tuple[str | None, datetime | None]:
        """Who holds a row's lease and until when (for logs and tests); `table`: "jobs" or "results"."""
        kind = {"jobs": _JOBS, "results": _RESULTS}.get(table)
        if kind is None:
            raise ValueError(table)
        row = await self._db.fetchone(
            f"SELECT {kind.owner}, {kind.until} FROM {kind.table} WHERE {kind.key} = ?", (row_id,)
        )
        if row is None or row[0] is None:
            return None, None
        return str(row[0]), datetime.fromisoformat(str(row[1])) if row[1] is not None else None
