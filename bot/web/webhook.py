"""The webhook receiver (Runware → bot), plus /healthz and /metrics, on one aiohttp server."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from bot.core.crashpoints import crash_point
from bot.core.metrics import CONTENT_TYPE, Metrics
from bot.core.tracker import JobTracker
from bot.runware.results import ResponseEnvelope
from bot.store.interface import Jobs

log = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/runware/"
#: `GET /runware/doctor-<hex>` answers probe_body(): how `doctor` sees that webhook.public_url reaches this server.
PROBE_PREFIX = "doctor-"

HealthCheck = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class WebhookDeps:
    jobs: Jobs
    tracker: JobTracker
    secret: str
    metrics: Metrics
    health: HealthCheck
    max_body_bytes: int
    read_timeout: float = 10.0  # seconds for a request's headers, then for its body
    max_connections: int = 256


DEPS: web.AppKey[WebhookDeps] = web.AppKey("deps", WebhookDeps)


def webhook_url(public_url: str, secret: str) -> str:
    """The URL Runware is told to POST to: the public base, then a path holding the secret."""
    return f"{public_url.rstrip('/')}{WEBHOOK_PREFIX}{secret}"


def probe_body(probe: str) -> str:
    return f"hailuo-bot webhook listener: {probe}"


async def handle_probe(request: web.Request) -> web.Response:
    return web.Response(text=probe_body(PROBE_PREFIX + request.match_info["nonce"]))


def _reject(deps: WebhookDeps, status: int, reason: str) -> web.Response:
    deps.metrics.webhooks.labels(outcome=reason).inc()
    log.info("webhook rejected: %s (HTTP %d)", reason, status)
    return web.json_response({"error": reason}, status=status)


async def handle_webhook(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    given = request.match_info.get("secret", "")
    if not deps.secret or not hmac.compare_digest(given.encode(), deps.secret.encode()):
        return _reject(deps, 401, "bad_secret")
    if request.content_length is not None and request.content_length > deps.max_body_bytes:
        return _reject(deps, 413, "too_large")
    try:
        # The whole body however it arrives (several TCP segments, chunked), up to client_max_size, in read_timeout.
        async with asyncio.timeout(deps.read_timeout):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _reject(deps, 413, "too_large")
    except TimeoutError:
        return _reject(deps, 408, "slow_body")
    except (OSError, ValueError):
        return _reject(deps, 400, "unreadable")
    try:
        raw = json.loads(body)
        envelope = ResponseEnvelope.parse_any(raw)
    except (ValueError, RecursionError, ValidationError):  # RecursionError: JSON nested thousands deep
        return _reject(deps, 400, "bad_json")
    items = envelope.items  # each bad item (a negative or infinite cost, progress 1e999 ...) is logged and skipped
    errors = envelope.errors
    uuids = {i.task_uuid for i in items if i.task_uuid} | {e.task_uuid for e in errors if e.task_uuid}
    if not uuids:
        return _reject(deps, 400, "bad_item" if envelope.data else "no_task")
    jobs = {}
    for uuid in uuids:
        job = await deps.jobs.by_task_uuid(uuid)
        if job is None:
            return _reject(deps, 404, "unknown_task")
        jobs[uuid] = job
    fresh = False
    touched: set[int] = set()
    for item in items:
        if item.task_uuid not in jobs:
            continue  # a stray entry without a taskUUID: the known ones still count
        job = jobs[item.task_uuid]
        stored = await deps.tracker.record_webhook_success(job, item)  # durable first, idempotent
        key = f"{item.task_uuid}:{item.video_uuid or item.status or 'item'}"
        if await deps.jobs.record_receipt(key, item.task_uuid) or stored:
            fresh = True
            touched.add(job.id)
    for err in errors:
        if err.task_uuid is None or err.task_uuid not in jobs:
            continue
        job = jobs[err.task_uuid]
        key = f"{err.task_uuid}:error:{err.code}:{(err.message or '')[:80]}"
        if not await deps.jobs.record_receipt(key, err.task_uuid):
            continue
        fresh = True
        await deps.tracker.record_webhook_failure(job, err)
    crash_point("after_webhook_receipt")
    deps.metrics.webhooks.labels(outcome="ok" if fresh else "duplicate").inc()
    for job_id in touched:
        deps.tracker.spawn_check(job_id)
    return web.json_response({"ok": True, "duplicate": not fresh})


async def handle_health(request: web.Request) -> web.Response:
    """200 when every part the bot needs is up (Discord, the database, the tracker), else 503 naming what is not."""
    deps = request.app[DEPS]
    try:
        checks = await deps.health()
    except Exception:
        log.exception("health check failed")
        checks = {"health_check": False}
    failing = sorted(name for name, up in checks.items() if not up)
    body = {"ok": not failing, "checks": checks, "failing": failing}
    return web.json_response(body, status=503 if failing else 200)


async def handle_metrics(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    text = await deps.metrics.render()
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


@dataclass
class ConnectionGuard:
    """Caps open connections. At the cap, a new connection evicts the oldest one that is not in a request (idle, or
    still sending its headers), so half-sent requests can neither exhaust file descriptors nor lock out /healthz.
    Headers must arrive within the server's keepalive_timeout (aiohttp closes a connection that sent no complete
    request by then); the body is read within read_timeout by the handler."""

    max_connections: int
    busy: dict[object, int] = field(default_factory=dict)  # protocol -> requests it is handling now
    evicted: int = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        protocol = request.protocol
        self.busy[protocol] = self.busy.get(protocol, 0) + 1
        try:
            return await handler(request)
        finally:
            self.busy[protocol] -= 1
            if not self.busy[protocol]:
                del self.busy[protocol]

    def factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        def make() -> asyncio.Protocol:
            live = [h for h in server.connections if h.transport is not None]  # not already being closed
            excess = len(live) - self.max_connections + 1  # a burst of accepts can overshoot: shed it all
            if excess > 0:
                idle = [h for h in live if h not in self.busy][:excess]  # oldest first
                for handler in idle:
                    handler.force_close()
                self.evicted += len(idle)
                if idle and (self.evicted == len(idle) or self.evicted // 1000 != (self.evicted - len(idle)) // 1000):
                    log.warning(
                        "webhook listener: %d connections open (the cap is %d); closed the oldest idle ones "
                        "(%d so far)",
                        len(live),
                        self.max_connections,
                        self.evicted,
                    )
            return server()

        return make


def create_webhook_app(deps: WebhookDeps, guard: ConnectionGuard | None = None) -> web.Application:
    middlewares = [guard.middleware] if guard is not None else []
    app = web.Application(client_max_size=deps.max_body_bytes, middlewares=middlewares)
    app[DEPS] = deps
    app.router.add_post(WEBHOOK_PREFIX + "{secret}", handle_webhook)
    app.router.add_get(WEBHOOK_PREFIX + PROBE_PREFIX + "{nonce:[0-9a-f]{1,64}}", handle_probe)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    return app


class WebhookServer:
    """Owns the listening socket of the webhook app."""

    def __init__(self, deps: WebhookDeps, host: str, port: int) -> None:
        self.guard = ConnectionGuard(deps.max_connections)
        self._app = create_webhook_app(deps, self.guard)
        self._read_timeout = deps.read_timeout
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.bound_port: int | None = None

    async def start(self) -> None:
        # Shutdown waits at most 5 s for requests in flight (a webhook being stored), not aiohttp's 60 s.
        # keepalive_timeout also bounds how long a connection may take to send a complete request's headers.
        self._runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
            keepalive_timeout=self._read_timeout,
            max_line_size=8190,
            max_field_size=8190,
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self.guard.factory(server), self._host, self._port, backlog=128)
        sockets = self._listener.sockets
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("webhook server listening on %s:%s", self._host, self.bound_port)

    @property
    def open_connections(self) -> int:
        server = self._runner.server if self._runner is not None else None
        return 0 if server is None else sum(1 for h in server.connections if h.transport is not None)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
