"""Engine: the Discord-agnostic core wired together, with one owner for each resource.

The bot's setup_hook and the `generate` CLI both build one Engine; close() runs start-up backwards.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg
from pydantic import ValidationError

from bot import logs
from bot.core.background import Loop
from bot.core.blocklist import BlocklistGuard
from bot.core.clips import ClipHosts
from bot.core.errors import UserFacingError
from bot.core.metrics import Metrics
from bot.core.models import Period, usd_to_micros, utc_now
from bot.core.offers import OfferDesk
from bot.core.policy import price_table_micros
from bot.core.pricing import PriceBook
from bot.core.recovery import Recovery
from bot.core.service import VideoService
from bot.core.sink import JobSink
from bot.core.tracker import JobTracker
from bot.runware.client import RunwareClient
from bot.runware.errors import RunwareError
from bot.runware.models import VideoInferenceTask
from bot.settings import Settings
from bot.simulator.server import RunwareSimulator
from bot.store.blocklist import BlocklistStore
from bot.store.driver import SchemaError
from bot.store.figures import SpendFigures
from bot.store.guilds import GuildDefaults, GuildStore
from bot.store.interface import Database, Guilds, Jobs, Ledger, open_database
from bot.store.jobs import JobStore
from bot.store.leases import Leases
from bot.store.ledger import SpendLedger
from bot.store.offers import OfferStore
from bot.store.sqlite.db import open_problem
from bot.web.webhook import WebhookDeps, WebhookServer, webhook_url

log = logging.getLogger(__name__)

WEBHOOK_SECRET_KEY = "webhook_secret"  # noqa: S105 - the kv key, not a secret
DRY_RUN_PROCESSING_SECONDS = 4.0


class StartupError(UserFacingError):
    """Something the bot needs at start-up is unusable; `detail` says what to change (one line for the operator)."""

    def __init__(self, detail: str) -> None:
        super().__init__("startup", detail=detail)
        self.detail = detail


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def member_defaults(settings: Settings) -> dict[Period, int]:
    lim = settings.limits
    raw = {Period.DAY: lim.member_day_usd, Period.WEEK: lim.member_week_usd, Period.MONTH: lim.member_month_usd}
    return {p: usd_to_micros(v) for p, v in raw.items() if v is not None}


def server_defaults(settings: Settings) -> dict[Period, int]:
    lim = settings.limits
    raw = {Period.DAY: lim.server_day_usd, Period.WEEK: lim.server_week_usd, Period.MONTH: lim.server_month_usd}
    return {p: usd_to_micros(v) for p, v in raw.items() if v is not None}


class Engine:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        serve_webhooks: bool = True,
        extra_health: Callable[[], Awaitable[dict[str, bool]]] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._serve_webhooks = serve_webhooks
        self._extra_health = extra_health
        self._stack = AsyncExitStack()
        self.metrics = Metrics()
        self.simulator: RunwareSimulator | None = None
        self.webhook_server: WebhookServer | None = None
        self.webhook_url: str | None = None
        self.started = False

    async def start(self, sink: JobSink | None = None) -> None:
        s = self.settings
        stack = self._stack
        self.db = await self._open_database()
        stack.push_async_callback(self.db.close)
        log.info("database %s ready (schema version %d)", self.db.describe(), self.db.schema_version)

        self.jobs: Jobs = JobStore(self.db, clock=self._clock)
        await self._start_leases()
        self.ledger: Ledger = SpendLedger(
            self.db, member_defaults=member_defaults(s), server_defaults=server_defaults(s)
        )
        self.guilds: Guilds = GuildStore(
            self.db,
            defaults=GuildDefaults(
                variations_cap=s.limits.variations_cap, concurrent_per_member=s.limits.concurrent_per_member
            ),
        )
        self.blocklists = BlocklistStore(self.db, clock=self._clock)
        self.spend = SpendFigures(self.db)
        self.prices = PriceBook(price_table_micros(s.pricing), self.spend.clip_costs, dry_run=s.dry_run)

        base_url, api_key = s.runware.api_base, s.runware.api_key.get_secret_value()
        if s.dry_run:
            processing = s.runware.dry_run_processing_seconds
            if processing is None:
                processing = DRY_RUN_PROCESSING_SECONDS
            self.simulator = RunwareSimulator(api_key=None, processing_seconds=processing)
            base_url = await self.simulator.start()
            stack.push_async_callback(self.simulator.close)
            api_key = "dry-run"
            log.warning("DRY RUN: using the built-in Runware simulator at %s; nothing is billed", base_url)
        self.runware = RunwareClient(
            base_url=base_url,
            api_key=api_key,
            timeout=s.runware.request_timeout,
            batch_size=s.runware.poll_batch_size,
            concurrency=s.runware.poll_concurrency,
            metrics=self.metrics,
        )
        await self.runware.start()
        stack.push_async_callback(self.runware.close)
        #: Where clip URLs may point: the configured hosts and Runware's own API host (the simulator in a dry run).
        self.clip_hosts = ClipHosts(s.delivery.clip_hosts, base_url)
        if self.simulator is not None:
            await self._replay_dry_run_tasks()

        secret = await self._webhook_secret()
        if s.webhook.public_url and secret:
            self.webhook_url = webhook_url(s.webhook.public_url, secret)

        self.tracker = JobTracker(
            jobs=self.jobs,
            ledger=self.ledger,
            runware=self.runware,
            poll_interval=s.runware.poll_interval,
            max_wait=s.runware.max_wait,
            sink=sink,
            clock=self._clock,
            metrics=self.metrics,
            dry_run=s.dry_run,
            leases=self.leases,
            delivery_workers=s.delivery.download_workers,
        )
        stack.push_async_callback(self.tracker.delivery_pool.stop, 10.0)
        self.service = VideoService(
            settings=s,
            jobs=self.jobs,
            ledger=self.ledger,
            guilds=self.guilds,
            runware=self.runware,
            tracker=self.tracker,
            webhook_url=self.webhook_url,
            clock=self._clock,
            leases=self.leases,
            blocklist=BlocklistGuard(self.blocklists),
            prices=self.prices,
        )
        self.offers = OfferDesk(
            offers=OfferStore(self.db, clock=self._clock), guilds=self.guilds, ledger=self.ledger, clock=self._clock
        )
        self.recovery = Recovery(
            settings=s,
            jobs=self.jobs,
            runware=self.runware,
            service=self.service,
            tracker=self.tracker,
            clock=self._clock,
            leases=self.leases,
        )
        self.tracker.before_sweep = self.recovery.recover_reserved
        self.tracker.in_flight = self.service.in_flight
        self.metrics.watch_jobs(self.jobs.counts_by_state)

        if self._serve_webhooks:
            deps = WebhookDeps(
                jobs=self.jobs,
                tracker=self.tracker,
                secret=secret or "",
                metrics=self.metrics,
                health=self.health,
                max_body_bytes=s.webhook.max_body_bytes,
                read_timeout=s.webhook.read_timeout,
                max_connections=s.webhook.max_connections,
            )
            self.webhook_server = WebhookServer(deps, s.webhook.host, s.webhook.port)
            stack.push_async_callback(self.webhook_server.close)
            try:
                await self.webhook_server.start()
            except OSError as exc:
                raise StartupError(
                    f"can't listen on webhook.listen {s.webhook.listen} ({_why(exc)}): stop whatever uses that "
                    "port (another copy of the bot?) or set webhook.listen / HAILUO_WEBHOOK__LISTEN"
                ) from exc
        if not self.webhook_url:
            log.info("no webhook.public_url: results come by polling every %ss", s.runware.poll_interval)
        self.started = True

    async def _start_leases(self) -> None:
        """This process's claims on jobs (SPEC §10), renewed three times per lease while it runs."""
        seconds = self.settings.lease_seconds
        self.leases = Leases(self.db, seconds=seconds, shared=self.db.dialect == "postgres", clock=self._clock)
        self._stack.push_async_callback(self._release_leases)  # a clean stop hands the work over at once
        self._lease_keeper = Loop("lease-renewal", self._renew_leases, seconds / 3)
        self._lease_keeper.start()
        self._stack.push_async_callback(self._lease_keeper.stop)
        log.info("process %s: leases of %.0f s", self.leases.owner, seconds)

    async def _renew_leases(self) -> None:
        await self.leases.renew()

    async def _release_leases(self) -> None:
        try:
            await self.leases.release_all()
        except Exception as exc:  # the database is gone: the leases lapse on their own instead
            log.warning(
                "shutdown: could not release this process's leases (%s); they lapse in %.0f s", exc, self.leases.seconds
            )

    async def _open_database(self) -> Database:
        """The backend `database.url` selects (PostgreSQL) or the SQLite file; a failure is one plain line."""
        s = self.settings
        url = s.database.url.get_secret_value().strip()
        if url:
            password = urlsplit(url).password
            if password:
                logs.add_secret(password)
        db = open_database(path=s.database.path, url=url)
        try:
            await db.open()
        except SchemaError as exc:
            raise StartupError(f"database: {exc}" if url else open_problem(s.database.path, exc)) from exc
        except (OSError, sqlite3.Error) as exc:
            if url:
                raise StartupError(
                    f"can't connect to the database {db.describe()} ({_why(exc)}): check database.url / DATABASE_URL "
                    "and that the server is running (run `hailuo-bot doctor` for details)"
                ) from exc
            raise StartupError(open_problem(s.database.path, exc)) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StartupError(
                f"the database {db.describe()} can't be used ({_why(exc)}): check database.url / DATABASE_URL, "
                "the user's password and rights (run `hailuo-bot doctor` for details)"
            ) from exc
        return db

    async def start_tracking(self) -> None:
        """Resume interrupted work and start polling (after the sink is ready to post)."""
        if not self.leases.shared:
            # SQLite serves one bot process: leases left in the file belong to a dead one (not to `generate`, which
            # never tracks, so it leaves a running bot's leases alone).
            await self.leases.clear()
        await self.recovery.recover_reserved(startup=True)
        await self.tracker.start()
        self._stack.push_async_callback(self.tracker.stop)

    async def _replay_dry_run_tasks(self) -> None:
        """The simulator lives in this process, so a restart forgets its tasks: hand it the unfinished ones again.

        Dry run only; it bills nothing. The taskUUIDs stay the same, so the tracker resumes them as usual.
        """
        for uuid in await self.jobs.tracked_task_uuids():
            job = await self.jobs.by_task_uuid(uuid)
            task = job.params_dict().get("task") if job is not None and job.dry_run else None
            if job is None or not isinstance(task, dict):
                continue
            try:
                await self.runware.submit(VideoInferenceTask.model_validate(task))
                log.info("job=%s task=%s DRY RUN: handed to the simulator again after the restart", job.id, uuid)
            except (RunwareError, ValidationError) as exc:
                log.warning("job=%s task=%s DRY RUN: the simulator could not take the job again: %s", job.id, uuid, exc)

    async def _webhook_secret(self) -> str | None:
        s = self.settings
        given = s.webhook.secret.get_secret_value()
        if given:
            logs.add_secret(given)
            return given
        if not s.webhook.public_url:
            return None
        stored = await self.jobs.get_kv(WEBHOOK_SECRET_KEY)
        if stored:
            logs.add_secret(stored)
            return stored
        made = secrets.token_urlsafe(32)
        await self.jobs.set_kv(WEBHOOK_SECRET_KEY, made)
        logs.add_secret(made)
        log.warning("WEBHOOK_SECRET is not set: generated one and kept it in the database so webhooks survive restarts")
        return made

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock every part of this engine reads (tests inject one they move by hand)."""
        return self._clock

    async def health(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        try:
            await self.db.fetchone("SELECT 1")
            checks["database"] = True
        except Exception as exc:
            log.warning("health: the database check failed: %s: %s", type(exc).__name__, exc)
            checks["database"] = False
        checks["tracker"] = self.tracker.healthy
        if self._extra_health is not None:
            checks.update(await self._extra_health())
        return checks

    async def close(self, drain_timeout: float = 10.0) -> None:
        """Stop taking jobs, let durable writes in flight finish (bounded), then close everything backwards."""
        if hasattr(self, "service"):
            try:
                await self.service.drain(drain_timeout)
            except TimeoutError:
                log.warning("shutdown: submits still in flight after %.0fs", drain_timeout)
        if self.webhook_server is not None:
            # No new webhook may spawn work once the tracker drains, nor reach a closing database: stop listening
            # (letting requests in flight finish) before anything else closes.
            await self.webhook_server.close()
        await self._stack.aclose()
        self.started = False
