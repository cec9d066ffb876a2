"""`hailuo-bot doctor`: check what the bot needs, one plain line per finding, with the fix when something is wrong."""

from __future__ import annotations

import asyncio
import errno
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from aiohttp import web

from bot.app import DISCORD_REST_BASE, point_at
from bot.core.models import format_usd
from bot.core.policy import price_table_micros
from bot.core.pricing import DRIFT_PERCENT, MEDIAN_OF, PriceBook
from bot.runware.client import RunwareClient
from bot.runware.errors import ErrorKind, RunwareError
from bot.settings import Settings
from bot.store.figures import SpendFigures
from bot.store.interface import open_database
from bot.store.sqlite.db import open_problem
from bot.web.webhook import PROBE_PREFIX, WEBHOOK_PREFIX, probe_body

TIMEOUT = aiohttp.ClientTimeout(total=10)
CHECK_TIMEOUT = 30.0
DATABASE_TIMEOUT = 15.0
LOW_BALANCE_USD = 5.0

#: Which privileged intents the Developer Portal has switched on, as discord.py names the application flags.
PRIVILEGED_INTENT_FLAGS: dict[str, str] = {
    "gateway_presence": "Presence",
    "gateway_presence_limited": "Presence",
    "gateway_guild_members": "Server Members",
    "gateway_guild_members_limited": "Server Members",
    "gateway_message_content": "Message Content",
    "gateway_message_content_limited": "Message Content",
}
#: What the README asks for when the bot is added to a server.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
    create_public_threads=True,
    send_messages_in_threads=True,
)
INVITE_SCOPES = ("bot", "applications.commands")


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    text: str
    warning: bool = False  # not a failure, but worth reading

    def line(self) -> str:
        mark = "ok  " if self.ok and not self.warning else ("warn" if self.ok else "FAIL")
        return f"[{mark}] {self.name}: {self.text}"


Check = Callable[[Settings], Awaitable[Finding]]


async def check_config(settings: Settings, source: str) -> Finding:
    mode = "DRY RUN (built-in simulator, nothing billed)" if settings.dry_run else "live"
    return Finding("config", True, f"loaded from {source}; mode: {mode}")


async def check_database(settings: Settings) -> Finding:
    url = settings.database.url.get_secret_value().strip()
    path = settings.database.path
    db = open_database(path=path, url=url)
    where = db.describe() if url else str(path)
    try:
        # Creates the file (SQLite) or connects (PostgreSQL) and applies migrations, exactly as the bot does.
        await asyncio.wait_for(db.open(), DATABASE_TIMEOUT)
        await asyncio.wait_for(db.check_writable(), DATABASE_TIMEOUT)
        return Finding("database", True, f"{where} is writable and migrated (schema version {db.schema_version})")
    except Exception as exc:  # any failure here is the finding itself
        if not url:
            return Finding("database", False, open_problem(path, exc))
        fix = "check database.url / DATABASE_URL (host, port, database, user, password) and that the server runs"
        return Finding("database", False, f"{where} can't be used ({_why(exc)}): {fix}")
    finally:
        await db.close()


async def check_prices(settings: Settings) -> Finding:
    """Each size whose reported costs differ from [pricing] by more than 5 %, with both figures (SPEC §4a)."""
    db = open_database(path=settings.database.path, url=settings.database.url.get_secret_value())
    try:
        await asyncio.wait_for(db.open(), DATABASE_TIMEOUT)
        book = PriceBook(price_table_micros(settings.pricing), SpendFigures(db).clip_costs, dry_run=settings.dry_run)
        drifts = await book.drifts()
    except Exception:  # the database finding above says what is wrong with it
        return Finding("prices", True, "not checked: the database can't be read (see the database line)", warning=True)
    finally:
        await db.close()
    if not drifts:
        return Finding(
            "prices", True, f"[pricing] is within {DRIFT_PERCENT} % of what Runware reported (last {MEDIAN_OF} clips)"
        )
    sizes = "; ".join(
        f"{d.size}: configured {format_usd(d.configured_micros)}, Runware charged {format_usd(d.reported_micros)} "
        f"(median of {d.samples}, {d.percent:+.0f} %)"
        for d in drifts
    )
    return Finding(
        "prices",
        True,
        f"{sizes}; reservations use the larger figure: update [pricing] to match your Runware price list",
        warning=True,
    )


def intent_notes(flags: int) -> str | None:
    """A note on privileged intents switched on in the portal (the bot needs none), or None."""
    app_flags = discord.ApplicationFlags._from_value(flags)
    names = sorted({name for attr, name in PRIVILEGED_INTENT_FLAGS.items() if getattr(app_flags, attr)})
    if not names:
        return None
    return (
        f"the {', '.join(names)} intent{'s are' if len(names) > 1 else ' is'} switched on in the Developer Portal; "
        "the bot does not use privileged intents, so you can switch "
        f"{'them' if len(names) > 1 else 'it'} off"
    )


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)


async def check_discord(settings: Settings) -> Finding:
    token = settings.discord.token.get_secret_value()
    if not token:
        return Finding(
            "discord",
            False,
            "DISCORD_TOKEN is not set: export DISCORD_TOKEN=<bot token from the Developer Portal → your "
            "application → Bot → Reset Token>",
        )
    base = settings.discord.api_base or DISCORD_REST_BASE
    point_at(settings.discord.api_base)
    client = discord.Client(intents=discord.Intents.none())
    app: discord.AppInfo | None = None
    try:
        await client.login(token)  # GET /users/@me through discord.py's own HTTP client
        try:
            app = await client.application_info()
        except discord.HTTPException:
            app = None  # only used for notes and the invite link
    except discord.LoginFailure:
        return Finding(
            "discord",
            False,
            "Discord refused DISCORD_TOKEN: reset the token in the Developer Portal "
            "(your application → Bot) and set it again",
        )
    except discord.HTTPException as exc:
        return Finding("discord", False, f"Discord answered HTTP {exc.status} for the bot user; try again later")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(
            "discord",
            False,
            f"could not reach Discord at {base} ({type(exc).__name__}); check the network or discord.api_base",
        )
    finally:
        await client.close()
    user = client.user
    assert user is not None  # set by a successful login
    text = f"token is valid for bot {user.name!r} (id {user.id}); it needs no privileged intents"
    notes: list[str] = []
    odd = intent_notes(app.flags.value) if app is not None else None
    if odd:
        notes.append(odd)
    if app is not None and app.bot_require_code_grant:
        notes.append(
            "'Requires OAuth2 Code Grant' is on, so the invite link needs a full OAuth2 flow: switch it off "
            "in the Developer Portal (your application → Bot)"
        )
    if notes:
        return Finding("discord", True, text + "; but " + "; and ".join(notes), warning=True)
    if app is not None:
        text += f"; invite it with {invite_url(app.id)}"
    return Finding("discord", True, text)


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
        details = await client.account_details()  # one cheap authenticated call; it also tells the balance
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
            f"Runware at {settings.runware.api_base} did not answer properly ({exc.code or exc.kind.value}); "
            "check runware.api_base and the network, then try again",
        )
    finally:
        await client.close()
    balance = details.balance_amount
    if balance is None:
        return Finding("runware", True, "the key works")
    text = f"the key works; balance ${balance:.2f}"
    if balance < LOW_BALANCE_USD:
        text += " — low: top up at runware.ai so jobs don't fail for lack of credits"
        return Finding("runware", True, text, warning=True)
    return Finding("runware", True, text)


async def check_webhook(settings: Settings) -> Finding:
    wh = settings.webhook
    nonce = secrets.token_hex(8)
    probe = f"{PROBE_PREFIX}{nonce}"

    async def echo(_: web.Request) -> web.Response:
        return web.Response(text=probe_body(probe))

    app = web.Application()
    app.router.add_get(WEBHOOK_PREFIX + probe, echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, wh.host, wh.port).start()
            listener = f"listening on {wh.listen} works"
        except OSError as exc:
            running = await _running_bot_health(wh.host, wh.port) if exc.errno == errno.EADDRINUSE else None
            if running is None:
                return Finding(
                    "webhook",
                    False,
                    f"can't listen on {wh.listen} ({_why(exc)}): stop what holds that port, or set webhook.listen",
                )
            failing = running.get("failing") or [k for k, up in (running.get("checks") or {}).items() if not up]
            if failing:
                return Finding(
                    "webhook",
                    False,
                    f"the bot already running on {wh.listen} reports {', '.join(failing)} down in /healthz: "
                    "read its log for why",
                )
            listener = f"the bot is already running on {wh.listen} and /healthz says all is up"
        if not wh.public_url:
            return Finding(
                "webhook", True, f"{listener}; no webhook.public_url, so results come by polling (fine behind NAT)"
            )
        url = f"{wh.public_url}{WEBHOOK_PREFIX}{probe}"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http, http.get(url) as resp:
                status, body = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Finding(
                "webhook",
                False,
                f"{wh.public_url} does not reach the listener on {wh.listen} from here ({type(exc).__name__}): "
                "forward it (reverse proxy, port forwarding) to that address, or leave webhook.public_url empty "
                "to use polling",
            )
        if status == 200 and body == probe_body(probe):
            return Finding("webhook", True, f"{listener}; {wh.public_url} reaches it")
        return Finding(
            "webhook",
            False,
            f"{wh.public_url} answered HTTP {status}, but not from this bot's listener: point it at {wh.listen} "
            f"(forward the path {WEBHOOK_PREFIX})",
        )
    finally:
        await runner.cleanup()


async def _running_bot_health(host: str, port: int) -> dict[str, Any] | None:
    """The /healthz of a hailuo-bot holding the port, or None if something else holds it."""
    target = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding
    if ":" in target:
        target = f"[{target}]"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(f"http://{target}:{port}/healthz") as resp,
        ):
            doc = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("checks"), dict) else None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def run_checks(settings: Settings, source: str, *, timeout: float = CHECK_TIMEOUT) -> list[Finding]:
    """Every finding, in order: config, database, prices, Discord, Runware, webhook."""
    findings = [await check_config(settings, source)]
    checks: tuple[Check, ...] = (check_database, check_prices, check_discord, check_runware, check_webhook)
    for check in checks:
        name = check.__name__.removeprefix("check_")
        try:
            findings.append(await asyncio.wait_for(check(settings), timeout))
        except TimeoutError:
            findings.append(Finding(name, False, f"the check took over {timeout:.0f} s; check the network, try again"))
        except Exception as exc:
            findings.append(Finding(name, False, f"the check itself failed ({_why(exc)}); please report this"))
    return findings


async def run_doctor(settings: Settings, source: str) -> tuple[int, list[str]]:
    """Run every check: the exit code (0 only if nothing failed; warnings are fine) and one line per finding."""
    findings = await run_checks(settings, source)
    lines = [f.line() for f in findings]
    failed = [f for f in findings if not f.ok]
    warned = [f for f in findings if f.ok and f.warning]
    if failed:
        lines.append(f"{len(failed)} problem(s) found: fix the FAIL lines above and run `hailuo-bot doctor` again")
    else:
        lines.append("all good" + (f" ({len(warned)} warning(s) worth reading)" if warned else ""))
    return (0 if not failed else 1), lines
