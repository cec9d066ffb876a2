"""HailuoBot: wires the core into discord.py. setup_hook opens everything; close() shuts it down backwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.core.engine import Engine, StartupError
from bot.core.errors import UserFacingError
from bot.settings import Settings
from bot.ui.buttons import JobButton
from bot.ui.delivery import ClipDelivery
from bot.ui.status import StatusReporter
from bot.ui.texts_errors import error_text
from bot.ui.tree import HailuoTree

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.video", "cogs.usage", "cogs.limits", "cogs.admin")
DISCORD_REST_BASE = Route.BASE
SHUTDOWN_DRAIN_SECONDS = 20.0
RUNNER_STOP_SECONDS = 2.0  #: after close(), how long bot.start() may take to return


def point_at(api_base: str) -> None:
    """Send every REST request to `api_base` (a REST proxy, or the loopback Discord of the tests)."""
    Route.BASE = api_base.rstrip("/") if api_base else DISCORD_REST_BASE


def shard_options(settings: Settings) -> dict[str, Any]:
    """The shards of this process (SPEC §10): shard_count None makes discord.py ask GET /gateway/bot for the count
    Discord recommends; no shard_ids runs them all."""
    options: dict[str, Any] = {"shard_count": settings.discord.shard_count or None}
    if settings.discord.shard_ids:
        options["shard_ids"] = list(settings.discord.shard_ids)
    return options


class HailuoBot(commands.AutoShardedBot):
    def __init__(self, settings: Settings, *, guild_ready_timeout: float = 2.0) -> None:
        # The bot never joins voice: don't warn operators that voice libraries are missing.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True  # channels, threads, roles; interactions carry the member, so no privileged intents
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=HailuoTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            **shard_options(settings),
        )
        self.settings = settings
        self._engine: Engine | None = None
        self._delivery: ClipDelivery | None = None
        self.ready_once = asyncio.Event()
        self._setup_done = asyncio.Event()
        point_at(settings.discord.api_base)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the engine starts in setup_hook")
        return self._engine

    @property
    def delivery(self) -> ClipDelivery:
        if self._delivery is None:
            raise RuntimeError("delivery starts in setup_hook")
        return self._delivery

    async def connect(self, *, reconnect: bool = True) -> None:
        if self.settings.discord.api_base:
            # Behind a REST proxy or in tests the gateway URL comes from {api_base}/gateway/bot, never the default.
            # discord.py falls back to DEFAULT_GATEWAY after an invalidated session, so that is what is set.
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
            log.info("gateway from %s/gateway/bot: %s", self.settings.discord.api_base, url)
        await super().connect(reconnect=reconnect)

    async def setup_hook(self) -> None:
        try:
            await self._setup()
        finally:
            self._setup_done.set()

    async def _setup(self) -> None:
        engine = Engine(self.settings, extra_health=self._discord_health)
        self._engine = engine
        await engine.start()
        status = StatusReporter(
            self, engine.jobs, interval=self.settings.delivery.status_edit_interval, clock=engine.clock
        )
        self._delivery = ClipDelivery(
            self, self.settings, engine.jobs, status, engine.runware.http, hosts=engine.clip_hosts
        )
        engine.tracker.sink = self._delivery
        self.add_dynamic_items(JobButton)
        for ext in EXTENSIONS:
            try:
                await self.load_extension(ext)
            except commands.ExtensionError:
                log.exception("extension %s failed to load; skipping it", ext)
        await self._sync_commands()
        await engine.start_tracking()

    async def _sync_commands(self) -> None:
        guild_ids = self.settings.discord.dev_guild_ids
        try:
            if guild_ids:
                for gid in guild_ids:
                    guild = discord.Object(gid)
                    self.tree.copy_global_to(guild=guild)
                    synced = await self.tree.sync(guild=guild)
                    log.info("synced %d commands to server %s", len(synced), gid)
            else:
                synced = await self.tree.sync()
                log.info("synced %d global commands (they can take a while to appear)", len(synced))
        except discord.HTTPException as exc:
            log.error("command sync failed: %s", exc)

    async def on_ready(self) -> None:
        log.info(
            "ready as %s in %d server(s), shards %s of %s%s",
            self.user,
            len(self.guilds),
            sorted(self.shards),
            self.shard_count,
            " — DRY RUN" if self.settings.dry_run else "",
        )
        self.ready_once.set()

    async def _discord_health(self) -> dict[str, bool]:
        return {"discord": self.is_ready() and not self.is_closed()}

    async def close(self) -> None:
        """Stop new jobs, finish durable writes in flight, close the core, then Discord.

        The commands stay loaded until the core is closed, so a /video arriving meanwhile is told the bot is
        shutting down instead of meeting an unknown command.
        """
        if self._engine is not None:
            if not self._setup_done.is_set():
                # SIGTERM during start-up: let the start finish its writes before the core closes under it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._setup_done.wait(), SHUTDOWN_DRAIN_SECONDS)
            await self._engine.close(SHUTDOWN_DRAIN_SECONDS)
        if self._delivery is not None:
            await self._delivery.status.flush()  # status edits still waiting out the throttle go out now
        for ext in list(self.extensions):
            try:
                await self.unload_extension(ext)
            except commands.ExtensionError:
                log.exception("unloading %s failed", ext)
        await super().close()


def startup_problem(exc: BaseException, settings: Settings) -> str | None:
    """One plain line for an error that ended the bot's start, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, UserFacingError):
        return error_text(exc)
    if isinstance(exc, discord.LoginFailure):
        return (
            "Discord refused DISCORD_TOKEN: reset the token in the Developer Portal (your application → Bot) "
            "and set it again"
        )
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return (
            "Discord refused the gateway intents; the bot needs no privileged intents, so check the application's "
            "settings in the Developer Portal"
        )
    where = settings.discord.api_base or DISCORD_REST_BASE
    if isinstance(exc, (aiohttp.ClientConnectionError, discord.GatewayNotFound, TimeoutError)):
        return f"could not reach Discord at {where}; check the network (or discord.api_base), then start again"
    if isinstance(exc, discord.HTTPException):
        return f"Discord answered HTTP {exc.status} while starting; try again in a minute"
    return None


async def _run(settings: Settings) -> int:
    bot = HailuoBot(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-POSIX
            loop.add_signal_handler(sig, stop.set)
    token = settings.discord.token.get_secret_value()
    async with bot:
        runner = asyncio.create_task(bot.start(token), name="discord")
        stopper = asyncio.create_task(stop.wait(), name="signals")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("signal received: stopping new jobs and shutting down cleanly")
            await bot.close()
            # discord.py only notices the close after its reconnect back-off sleep, which grows to many minutes
            # while Discord is unreachable: everything is closed by now, so don't wait for it.
            await asyncio.wait({runner}, timeout=RUNNER_STOP_SECONDS)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        else:
            stopper.cancel()
            exc = runner.exception()
            if exc is not None:
                problem = startup_problem(exc, settings)
                if problem is None:
                    raise exc
                raise StartupError(problem) from exc
    log.info("shut down cleanly")
    return 0


def run_bot(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    return asyncio.run(_run(settings))


__all__ = ["EXTENSIONS", "HailuoBot", "point_at", "run_bot"]
