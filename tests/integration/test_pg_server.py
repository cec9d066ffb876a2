"""The PostgreSQL test infrastructure (tests/pg.py, tests/conftest_pg.py) against the real server it starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

from tests.pg import ENV_BIN, PostgresServer, PostgresUnavailable, find_bindir

REPO = Path(__file__).resolve().parents[2]
SEEN_DATABASES: set[str] = set()


async def test_pg_url_is_a_working_empty_database(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 0
        await conn.execute("CREATE TABLE clip (id bigserial PRIMARY KEY, prompt text NOT NULL, cost numeric(10, 4))")
        await conn.executemany("INSERT INTO clip (prompt, cost) VALUES ($1, $2)", [("a cat", 0.25), ("a dog", 0.5)])
        rows = await conn.fetch("SELECT id, prompt, cost FROM clip ORDER BY id")
        assert [(r["id"], r["prompt"], float(r["cost"])) for r in rows] == [(1, "a cat", 0.25), (2, "a dog", 0.5)]
        assert await conn.fetchval("SELECT current_setting('server_encoding')") == "UTF8"
    finally:
        await conn.close()


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_each_test_gets_its_own_database(pg_url: str, run: int) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        assert name not in SEEN_DATABASES
        SEEN_DATABASES.add(name)
        # Whatever an earlier test left in its database is not here.
        assert await conn.fetchval("SELECT to_regclass('public.marker')") is None
        await conn.execute("CREATE TABLE marker (run int)")
        await conn.execute("INSERT INTO marker VALUES ($1)", run)
    finally:
        await conn.close()


async def test_the_server_is_on_loopback_and_tuned_for_tests(pg_server: PostgresServer, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        if pg_server.process is not None:
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("SHOW fsync") == "off"
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert str(await conn.fetchval("SELECT inet_server_addr()")) == "127.0.0.1"
    finally:
        await conn.close()


async def test_a_root_run_starts_the_server_as_another_user(pg_server: PostgresServer, pg_url: str) -> None:
    if pg_server.process is None:
        pytest.skip("HAILUO_TEST_PG_URL names an existing server: its user was not chosen by this run")
    conn = await asyncpg.connect(pg_url)
    try:
        data_uid = os.stat(await conn.fetchval("SELECT current_setting('data_directory')")).st_uid
        backend_uid = os.stat(f"/proc/{await conn.fetchval('SELECT pg_backend_pid()')}").st_uid  # while it lives
    finally:
        await conn.close()
    postmaster_uid = os.stat(f"/proc/{pg_server.process.pid}").st_uid
    assert data_uid == postmaster_uid == backend_uid
    if os.geteuid() == 0:
        assert postmaster_uid != 0
    else:
        assert postmaster_uid == os.geteuid()


async def test_dropping_a_database_closes_what_is_still_connected(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("dropme")
    name = url.rsplit("/", 1)[1]
    leftover = await asyncpg.connect(url)
    try:
        pg_server.drop_database(url)
        admin = await asyncpg.connect(pg_server.admin_url)
        try:
            assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
        finally:
            await admin.close()
    finally:
        await leftover.close()


async def test_the_wheel_server_works_too(pg_server: PostgresServer) -> None:
    """The test extra's wheel is what a machine without the distribution's server uses: it must start here too."""
    bindir, source = find_bindir("wheel")
    if pg_server.process is not None and pg_server.source == source:
        server = pg_server  # the session already runs on the wheel
    else:
        server = PostgresServer.launch(bindir, source=source)
    try:
        url = server.create_database()
        conn = await asyncpg.connect(url)
        try:
            version = await conn.fetchval("SHOW server_version_num")
            assert int(version) >= 130000
            if os.geteuid() == 0:
                assert os.stat(await conn.fetchval("SELECT current_setting('data_directory')")).st_uid != 0
        finally:
            await conn.close()
        server.drop_database(url)
    finally:
        if server is not pg_server:
            workdir = server.workdir
            server.stop()
            assert workdir is not None and not workdir.exists()


def test_no_server_is_one_line_error_not_a_skip(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable) as raised:
        PostgresServer.start({ENV_BIN: str(tmp_path / "nowhere")})
    assert "\n" not in str(raised.value)
    assert "no PostgreSQL server binary found" in str(raised.value)

    test_file = tmp_path / "test_needs_pg.py"
    test_file.write_text(
        textwrap.dedent(
            """
            def test_needs_pg(pg_url):
                pass
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAILUO_TEST_PG_")}
    env[ENV_BIN] = str(tmp_path / "nowhere")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest_pg"]
    args += [
        "-c",
        os.devnull,
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "--rootdir",
        str(tmp_path),
        str(test_file),
    ]
    result = subprocess.run(
        args,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PostgreSQL: no PostgreSQL server binary found" in result.stdout
    assert "1 error" in result.stdout
    assert "skipped" not in result.stdout
