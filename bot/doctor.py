"""`hailuo-bot doctor`: check what the bot needs, one plain line per finding, with the fix when something is wrong."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

import aiohttp
from aiohttp import web

from bot.runware.client import RunwareClient
from bot.runware.errors import ErrorKind, RunwareError
from bot.settings import Settings
from bot.store.db import Database

DISCORD_API = "https://discord.com/api/v10"
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    text: str
    warning: bool = False  # not a failure, but worth reading

    def line(self) -> str:
        mark = "ok " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        return f"[{mark}] {self.name}: {self.text}"


Check = Callable[[Settings], Awaitable[Finding]]


async def check_config(settings: Settings, source: str) -> Finding:
    mode = "DRY RUN (built-in simulator, nothing billed)" if settings.dry_run else "live"
    return Finding("config", True, f"loaded from {source}; mode: {mode}")


async def check_database(settings: Settings) -> Finding:
    path = settings.database.path
    db = Database(path)
    try:
        await db.open()
        await db.check_writable()
        return Finding("database", True, f"{path} is writable, schema version {db.schema_version}")
    except Exception as exc:  # any failure here is the finding itself
        return Finding(
            "database",
            False,
            f"{path} can't be used ({type(exc).__name__}: {exc}). Check that the "
            "folder exists and is writable by this user, or set database.path",
        )
    finally:
        await db.close()


async def check_discord(settings: Settings) -> Finding:
    token = settings.discord.token.get_secret_value()
    if not token:
        return Finding(
            "discord",
            False,
            "DISCORD_TOKEN is not set: export DISCORD_TOKEN=<bot token from the "
            "Developer Portal → your application → Bot>",
        )
    base = settings.discord.api_base or DISCORD_API
    headers = {"Authorization": f"Bot {token}", "User-Agent": "DiscordBot (hailuo-bot doctor, 0.1)"}
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, headers=headers) as http:
            async with http.get(f"{base}/users/@me") as resp:
                if resp.status == 401:
                    return Finding(
                        "discord",
                        False,
                        "Discord refused DISCORD_TOKEN: reset the token in the "
                        "Developer Portal (your application → Bot) and set it again",
                    )
                if resp.status != 200:
                    return Finding(
                        "discord", False, f"Discord answered HTTP {resp.status} for the bot user; try again later"
                    )
                user = await resp.json()
            async with http.get(f"{base}/oauth2/applications/@me") as resp:
                app = await resp.json() if resp.status == 200 else {}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(
            "discord",
            False,
            f"could not reach Discord at {base} ({type(exc).__name__}); check the network or discord.api_base",
        )
    name = user.get("username", "?")
    public = " and is public (anyone can invite it)" if app.get("bot_public") else ""
    return Finding(
        "discord",
        True,
        f"token is valid for bot {name!r} (id {user.get('id')}){public}; no privileged intents are needed",
    )


async def check_runware(settings: Settings) -> Finding:
    if settings.dry_run:
        return Finding("runware", True, "dry run: the built-in simulator stands in for Runware; no key needed")
    key = settings.runware.api_key.get_secret_value()
    if not key:
        return Finding(
            "runware",
            False,
            "RUNWARE_API_KEY is not set: export RUNWARE_API_KEY=<key from runware.ai → API Keys>, or use --dry-run",
        )
    client = RunwareClient(
        base_url=settings.runware.api_base,
        api_key=key,
        timeout=min(settings.runware.request_timeout, 15),
        max_attempts=1,
    )
    try:
        await client.start()
        details = await client.account_details()
    except RunwareError as exc:
        if exc.kind is ErrorKind.AUTHENTICATION:
            return Finding(
                "runware",
                False,
                "Runware refused RUNWARE_API_KEY: create a new key at runware.ai → API Keys and set it again",
            )
        return Finding(
            "runware",
            False,
            f"Runware did not answer properly ({exc.code}); check runware.api_base and the network, then try again",
        )
    finally:
        await client.close()
    balance = details.balance_amount
    if balance is None:
        return Finding("runware", True, "the key works")
    low = balance < 5
    text = f"the key works; balance ${balance:.2f}"
    if low:
        text += " — low: top up at runware.ai so jobs don't fail for credits"
    return Finding("runware", True, text, warning=low)


async def check_webhook(settings: Settings) -> Finding:
    wh = settings.webhook
    nonce = secrets.token_hex(8)

    async def echo(_: web.Request) -> web.Response:
        return web.Response(text=nonce)

    app = web.Application()
    app.router.add_get(f"/doctor/{nonce}", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, wh.host, wh.port).start()
        except OSError as exc:
            return Finding(
                "webhook",
                False,
                f"can't listen on {wh.listen} ({exc.strerror}). If the bot is already "
                "running, that is expected: check its /healthz instead; else change webhook.listen",
            )
        if not wh.public_url:
            return Finding(
                "webhook",
                True,
                f"listening on {wh.listen} works; no webhook.public_url, so results come by polling (fine behind NAT)",
                warning=False,
            )
        url = f"{wh.public_url}/doctor/{nonce}"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url) as resp:
                body = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Finding(
                "webhook",
                False,
                f"{wh.public_url} does not reach this listener ({type(exc).__name__}). "
                "Check the reverse proxy / port forwarding to " + wh.listen,
                warning=False,
            )
        if resp.status == 200 and body == nonce:
            return Finding("webhook", True, f"{wh.public_url} reaches the listener on {wh.listen}")
        return Finding(
            "webhook",
            False,
            f"{wh.public_url} answered HTTP {resp.status} but not from this listener; point it at {wh.listen}",
        )
    finally:
        await runner.cleanup()


async def run_doctor(settings: Settings, source: str, *, out: TextIO = sys.stdout) -> int:
    """Run every check; print one line each; exit 0 only if nothing failed."""
    findings = [await check_config(settings, source)]
    for check in (check_database, check_discord, check_runware, check_webhook):
        try:
            findings.append(await asyncio.wait_for(check(settings), 30))
        except TimeoutError:
            findings.append(Finding(check.__name__.removeprefix("check_"), False, "the check timed out; try again"))
    for f in findings:
        print(f.line(), file=out)
    failed = [f for f in findings if not f.ok]
    print("all good" if not failed else f"{len(failed)} problem(s) found", file=out)
    return 0 if not failed else 1
