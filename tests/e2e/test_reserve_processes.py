"""Reservations are atomic across processes (SPEC §10): 200 at once from two OS processes on one PostgreSQL
database, against a daily limit that fits 10, reserve exactly 10."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from tests.e2e.crash_runner import REPO_ROOT, child_env
from tests.e2e.reserve_runner import DAY_LIMIT_MICROS


async def test_200_reservations_from_two_processes_against_a_limit_that_fits_10_reserve_exactly_10(
    pg_url: str, tmp_path: Path
) -> None:
    start = tmp_path / "go"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e.reserve_runner",
            pg_url,
            "100",
            str(start),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(),
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    try:
        # Both have migrated (or found migrated) the database and wait; the first to open it created the schema.
        start.touch()
        outputs = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    counts = [dict(part.split("=") for part in out.decode().split()) for out, _ in outputs]
    print("reservations per process:", counts)
    assert sum(int(c["reserved"]) for c in counts) == 10, counts
    assert sum(int(c["refused"]) for c in counts) == 190, counts

    conn = await asyncpg.connect(pg_url, timeout=10)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM jobs") == 10
        assert await conn.fetchval("SELECT SUM(held_micros) FROM ledger WHERE status = 'held'") == DAY_LIMIT_MICROS
    finally:
        await conn.close()
